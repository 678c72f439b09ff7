//! Tests for the gesture state machine: event sequences with timestamps → messages.

use super::*;

/// A 1000x500 CSS canvas showing a 100x100 image, drawn 500x500 at CSS x 250..750:
/// CSS point (250 + 500·fx, 500·fy) is fraction (fx, fy); x < 250 or x > 750 is a bar.
fn machine() -> Gestures {
    let mut g = Gestures::new();
    g.set_view(View::new(1000.0, 500.0, 1.0, Some((100, 100))));
    g
}

fn mouse(x: f64, y: f64) -> Pointer {
    Pointer {
        id: 1,
        kind: PointerKind::Mouse,
        x,
        y,
    }
}

fn finger(id: i32, x: f64, y: f64) -> Pointer {
    Pointer {
        id,
        kind: PointerKind::Touch,
        x,
        y,
    }
}

fn press(at: (f64, f64), b: Button, clicks: u8) -> ClientMessage {
    ClientMessage::Button {
        x: at.0,
        y: at.1,
        button: b,
        down: true,
        clicks,
        seq: None,
    }
}

fn release(at: (f64, f64), b: Button) -> ClientMessage {
    ClientMessage::Button {
        x: at.0,
        y: at.1,
        button: b,
        down: false,
        clicks: 1,
        seq: None,
    }
}

fn moved(at: (f64, f64)) -> ClientMessage {
    ClientMessage::Move {
        x: at.0,
        y: at.1,
        seq: None,
    }
}

fn tap(g: &mut Gestures, p: Pointer, t: f64) -> Vec<ClientMessage> {
    let mut out = g.down(p, Button::Left, t);
    out.extend(g.up(p, Button::Left, t + 50.0));
    out
}

#[test]
fn a_press_goes_out_at_once_and_its_release_when_it_happens() {
    let mut g = machine();
    assert_eq!(
        g.down(mouse(500.0, 250.0), Button::Left, 0.0),
        vec![press((0.5, 0.5), Button::Left, 1)],
        "nothing waits for a double-click window"
    );
    assert_eq!(g.deadline(), None, "no timer for a mouse press");
    assert!(g.tick(5_000.0).is_empty(), "holding sends nothing more");
    assert_eq!(
        g.up(mouse(500.0, 250.0), Button::Left, 1_000.0),
        vec![release((0.5, 0.5), Button::Left)]
    );
}

#[test]
fn quick_presses_near_each_other_count_as_a_double_then_a_triple_click() {
    let mut g = machine();
    let first = tap(&mut g, mouse(500.0, 250.0), 0.0);
    assert_eq!(first[0], press((0.5, 0.5), Button::Left, 1));
    let second = tap(&mut g, mouse(502.0, 251.0), 180.0);
    assert_eq!(second[0], press((0.504, 0.502), Button::Left, 2));
    assert_eq!(second[1], release((0.504, 0.502), Button::Left));
    let third = tap(&mut g, mouse(501.0, 250.0), 360.0);
    assert_eq!(third[0], press((0.502, 0.5), Button::Left, 3));
    let fourth = tap(&mut g, mouse(501.0, 250.0), 540.0);
    assert_eq!(
        fourth[0],
        press((0.502, 0.5), Button::Left, 1),
        "a new series"
    );
}

#[test]
fn presses_too_far_apart_in_space_time_or_button_start_a_new_series() {
    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    let far = tap(&mut g, mouse(520.0, 250.0), 100.0);
    assert_eq!(far[0], press((0.54, 0.5), Button::Left, 1), "too far");
    let late = tap(&mut g, mouse(520.0, 250.0), 100.0 + DOUBLE_CLICK_MS + 1.0);
    assert_eq!(late[0], press((0.54, 0.5), Button::Left, 1), "too late");
    let right = g.down(mouse(520.0, 250.0), Button::Right, 700.0);
    assert_eq!(
        right,
        vec![press((0.54, 0.5), Button::Right, 1)],
        "other button"
    );
}

#[test]
fn moves_while_pressed_follow_once_a_frame_and_the_release_ends_there() {
    let mut g = machine();
    g.down(mouse(300.0, 100.0), Button::Left, 0.0);
    assert!(g.moved(mouse(320.0, 100.0)).is_empty(), "coalesced");
    assert!(g.moved(mouse(350.0, 150.0)).is_empty());
    assert!(g.wants_frame());
    assert_eq!(g.frame(), vec![moved((0.2, 0.3))], "only the latest");
    assert!(g.frame().is_empty());
    g.moved(mouse(900.0, -20.0));
    assert_eq!(g.frame(), vec![moved((1.0, 0.0))], "clamped onto the image");
    assert_eq!(
        g.up(mouse(900.0, -20.0), Button::Left, 400.0),
        vec![release((1.0, 0.0), Button::Left)],
        "a release off the image is still sent"
    );
}

#[test]
fn a_release_drops_the_move_still_waiting_for_a_frame() {
    let mut g = machine();
    g.down(mouse(300.0, 100.0), Button::Left, 0.0);
    g.moved(mouse(350.0, 150.0));
    assert_eq!(
        g.up(mouse(360.0, 150.0), Button::Left, 50.0),
        vec![release((0.22, 0.3), Button::Left)]
    );
    assert!(g.frame().is_empty());
}

#[test]
fn a_hover_move_waiting_for_the_frame_goes_before_a_press() {
    let mut g = machine();
    g.moved(mouse(400.0, 100.0));
    assert_eq!(
        g.down(mouse(400.0, 100.0), Button::Left, 0.0),
        vec![moved((0.3, 0.2)), press((0.3, 0.2), Button::Left, 1)]
    );
}

#[test]
fn hover_moves_are_coalesced_to_one_a_frame_and_bars_send_none() {
    let mut g = machine();
    g.moved(mouse(300.0, 100.0));
    g.moved(mouse(400.0, 100.0));
    g.moved(mouse(100.0, 100.0));
    assert_eq!(g.frame(), vec![moved((0.3, 0.2))]);
    assert!(!g.wants_frame());
}

#[test]
fn presses_on_the_letterbox_bars_send_nothing() {
    let mut g = machine();
    assert!(tap(&mut g, mouse(100.0, 250.0), 0.0).is_empty());
    assert!(g.down(mouse(900.0, 250.0), Button::Left, 500.0).is_empty());
    assert!(g.moved(mouse(500.0, 250.0)).is_empty());
    assert!(g.frame().is_empty(), "a press from a bar does not drag");
    assert!(g.up(mouse(500.0, 250.0), Button::Left, 600.0).is_empty());
}

#[test]
fn a_cancel_or_reset_releases_the_button_that_is_down() {
    let mut g = machine();
    g.down(mouse(500.0, 250.0), Button::Right, 0.0);
    g.moved(mouse(550.0, 250.0));
    assert_eq!(g.cancel(1), vec![release((0.6, 0.5), Button::Right)]);
    assert!(g.frame().is_empty());
    g.down(mouse(500.0, 250.0), Button::Left, 1_000.0);
    assert_eq!(g.reset(), vec![release((0.5, 0.5), Button::Left)]);
    assert!(g.reset().is_empty(), "released once");
}

#[test]
fn a_chorded_second_button_is_ignored_until_the_first_is_up() {
    let mut g = machine();
    g.down(mouse(500.0, 250.0), Button::Left, 0.0);
    assert!(g.down(mouse(500.0, 250.0), Button::Right, 10.0).is_empty());
    assert!(g.up(mouse(500.0, 250.0), Button::Right, 20.0).is_empty());
    assert_eq!(g.up(mouse(500.0, 250.0), Button::Left, 30.0).len(), 1);
}

#[test]
fn a_tap_is_a_click_and_a_double_tap_counts_two() {
    let mut g = machine();
    assert!(g
        .down(finger(7, 500.0, 250.0), Button::Left, 0.0)
        .is_empty());
    assert_eq!(
        g.up(finger(7, 504.0, 252.0), Button::Left, 80.0),
        vec![
            press((0.5, 0.5), Button::Left, 1),
            release((0.5, 0.5), Button::Left)
        ]
    );
    let second = tap(&mut g, finger(7, 520.0, 260.0), 250.0);
    assert_eq!(
        second[0],
        press((0.54, 0.52), Button::Left, 2),
        "taps wobble more"
    );
}

#[test]
fn a_long_press_is_a_right_click_at_the_deadline() {
    let mut g = machine();
    g.down(finger(7, 500.0, 250.0), Button::Left, 0.0);
    assert_eq!(g.deadline(), Some(LONG_PRESS_MS));
    assert!(g.tick(LONG_PRESS_MS - 1.0).is_empty());
    assert_eq!(
        g.tick(LONG_PRESS_MS),
        vec![
            press((0.5, 0.5), Button::Right, 1),
            release((0.5, 0.5), Button::Right)
        ]
    );
    assert_eq!(g.deadline(), None);
    assert!(g
        .up(finger(7, 500.0, 250.0), Button::Left, 900.0)
        .is_empty());
}

#[test]
fn a_one_finger_drag_presses_where_it_started_and_no_long_press_follows() {
    let mut g = machine();
    g.down(finger(7, 500.0, 250.0), Button::Left, 0.0);
    assert!(
        g.moved(finger(7, 505.0, 250.0)).is_empty(),
        "inside the slop"
    );
    assert_eq!(
        g.moved(finger(7, 550.0, 250.0)),
        vec![press((0.5, 0.5), Button::Left, 1)]
    );
    assert_eq!(g.deadline(), None);
    assert_eq!(g.frame(), vec![moved((0.6, 0.5))]);
    assert_eq!(
        g.up(finger(7, 600.0, 250.0), Button::Left, 700.0),
        vec![release((0.7, 0.5), Button::Left)]
    );
}

#[test]
fn two_fingers_moving_together_scroll_in_wheel_steps() {
    let mut g = machine();
    g.down(finger(1, 450.0, 300.0), Button::Left, 0.0);
    assert!(g
        .down(finger(2, 550.0, 300.0), Button::Left, 20.0)
        .is_empty());
    assert_eq!(g.deadline(), None, "no long press under two fingers");
    let mut wheel = Vec::new();
    for step in 1..=8 {
        let y = 300.0 - 10.0 * f64::from(step);
        wheel.extend(g.moved(finger(1, 450.0, y)));
        wheel.extend(g.moved(finger(2, 550.0, y)));
    }
    let dy: i32 = wheel
        .iter()
        .map(|m| match m {
            ClientMessage::Wheel { dy, dx: 0, .. } => *dy,
            other => panic!("only wheel steps, got {other:?}"),
        })
        .sum();
    // The centre moved 80 px up (less the slop before it counted): content scrolls down.
    assert!((2..=3).contains(&dy), "{dy} steps down");
    assert!(g
        .up(finger(1, 450.0, 220.0), Button::Left, 300.0)
        .is_empty());
    assert!(g
        .up(finger(2, 550.0, 220.0), Button::Left, 310.0)
        .is_empty());
    assert!(g.frame().is_empty(), "no click, no move");
    assert_eq!(g.view().zoom(), 1.0);
}

#[test]
fn a_pinch_zooms_the_view_locally_and_taps_land_on_the_zoomed_pixel() {
    let mut g = machine();
    g.down(finger(1, 450.0, 250.0), Button::Left, 0.0);
    g.down(finger(2, 550.0, 250.0), Button::Left, 10.0);
    let mut sent = Vec::new();
    for step in 1..=10 {
        let d = 5.0 * f64::from(step);
        sent.extend(g.moved(finger(1, 450.0 - d, 250.0)));
        sent.extend(g.moved(finger(2, 550.0 + d, 250.0)));
    }
    assert!(sent.is_empty(), "a pinch sends nothing: {sent:?}");
    assert!(g.take_view_changed());
    assert!(!g.take_view_changed());
    assert!(
        (g.view().zoom() - 2.0).abs() < 1e-6,
        "fingers 2x apart: {}",
        g.view().zoom()
    );
    g.up(finger(1, 400.0, 250.0), Button::Left, 400.0);
    g.up(finger(2, 600.0, 250.0), Button::Left, 410.0);
    // Zoomed 2x about the centre: CSS x 750 (the image's right edge at zoom 1) is now
    // a quarter of the image right of the centre.
    let out = tap(&mut g, finger(3, 750.0, 250.0), 2_000.0);
    assert_eq!(out[0], press((0.75, 0.5), Button::Left, 1));
    g.reset_zoom();
    assert!(g.take_view_changed());
    assert_eq!(g.view().zoom(), 1.0);
}

#[test]
fn trackpad_mode_moves_the_pointer_relatively_and_taps_click_there() {
    let mut g = machine();
    g.set_touch_mode(TouchMode::Trackpad);
    assert_eq!(g.trackpad_pointer(), (0.5, 0.5));
    // The finger starts anywhere, even on a bar; the pointer moves from where it is.
    g.down(finger(7, 100.0, 100.0), Button::Left, 0.0);
    assert!(g.moved(finger(7, 150.0, 100.0)).is_empty());
    // 50 CSS px × 1.5 over a 500 px wide image.
    assert_eq!(g.frame(), vec![moved((0.65, 0.5))]);
    assert!(
        g.up(finger(7, 150.0, 100.0), Button::Left, 300.0)
            .is_empty(),
        "moving the pointer is not a click"
    );
    assert_eq!(g.trackpad_pointer(), (0.65, 0.5));
    let out = tap(&mut g, finger(7, 900.0, 400.0), 1_000.0);
    assert_eq!(
        out,
        vec![
            press((0.65, 0.5), Button::Left, 1),
            release((0.65, 0.5), Button::Left)
        ]
    );
    // A mouse still points directly.
    assert_eq!(
        g.down(mouse(500.0, 250.0), Button::Left, 2_000.0),
        vec![press((0.5, 0.5), Button::Left, 1)]
    );
}

#[test]
fn nothing_is_sent_before_the_image_size_is_known() {
    let mut g = Gestures::new();
    assert!(tap(&mut g, mouse(500.0, 250.0), 0.0).is_empty());
    g.moved(mouse(10.0, 10.0));
    assert!(g.frame().is_empty());
}
