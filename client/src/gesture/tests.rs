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

fn finger(x: f64, y: f64) -> Pointer {
    Pointer {
        id: 7,
        kind: PointerKind::Touch,
        x,
        y,
    }
}

fn tap(g: &mut Gestures, p: Pointer, t: f64) -> Vec<ClientMessage> {
    let mut out = g.down(p, Button::Left, t);
    out.extend(g.up(p, Button::Left, t + 50.0));
    out
}

fn click_at(x: f64, y: f64, button: Button) -> ClientMessage {
    ClientMessage::Click {
        x,
        y,
        button,
        seq: None,
    }
}

#[test]
fn a_click_waits_for_the_double_click_window_then_goes_out_once() {
    let mut g = machine();
    assert!(tap(&mut g, mouse(500.0, 250.0), 0.0).is_empty());
    assert_eq!(g.deadline(), Some(50.0 + DOUBLE_CLICK_MS));
    assert!(g.tick(200.0).is_empty(), "still inside the window");
    assert_eq!(g.tick(350.0), vec![click_at(0.5, 0.5, Button::Left)]);
    assert!(g.tick(1000.0).is_empty(), "sent once");
    assert_eq!(g.deadline(), None);
}

#[test]
fn two_clicks_close_together_are_one_double_click() {
    let mut g = machine();
    assert!(tap(&mut g, mouse(500.0, 250.0), 0.0).is_empty());
    let out = tap(&mut g, mouse(502.0, 251.0), 180.0);
    assert_eq!(
        out,
        vec![ClientMessage::DoubleClick {
            x: 0.5,
            y: 0.5,
            button: Button::Left,
            seq: None
        }]
    );
    assert!(
        g.tick(10_000.0).is_empty(),
        "no stray single click afterwards"
    );
}

#[test]
fn a_slow_second_press_released_after_the_window_is_still_a_double_click() {
    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    assert!(g.down(mouse(500.0, 250.0), Button::Left, 300.0).is_empty());
    assert_eq!(g.deadline(), None, "held while the second press is down");
    assert!(g.tick(600.0).is_empty());
    let out = g.up(mouse(500.0, 250.0), Button::Left, 650.0);
    assert!(
        matches!(out.as_slice(), [ClientMessage::DoubleClick { .. }]),
        "{out:?}"
    );
}

#[test]
fn clicks_too_far_apart_in_space_or_time_are_two_clicks() {
    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    let out = tap(&mut g, mouse(600.0, 250.0), 100.0);
    assert_eq!(out, vec![click_at(0.5, 0.5, Button::Left)]);
    assert_eq!(g.tick(1000.0), vec![click_at(0.7, 0.5, Button::Left)]);

    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    assert_eq!(g.tick(400.0).len(), 1);
    assert!(tap(&mut g, mouse(500.0, 250.0), 500.0).is_empty());
    assert_eq!(g.tick(2000.0).len(), 1);
}

#[test]
fn right_and_middle_clicks_go_out_at_once() {
    let mut g = machine();
    assert!(g.down(mouse(300.0, 100.0), Button::Right, 0.0).is_empty());
    assert_eq!(
        g.up(mouse(300.0, 100.0), Button::Right, 40.0),
        vec![click_at(0.1, 0.2, Button::Right)]
    );
    g.down(mouse(300.0, 100.0), Button::Middle, 100.0);
    assert_eq!(
        g.up(mouse(300.0, 100.0), Button::Middle, 140.0),
        vec![click_at(0.1, 0.2, Button::Middle)]
    );
    assert_eq!(g.deadline(), None);
}

#[test]
fn a_right_click_right_after_a_left_click_flushes_the_left_one_first() {
    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    let mut out = g.down(mouse(500.0, 250.0), Button::Right, 100.0);
    out.extend(g.up(mouse(500.0, 250.0), Button::Right, 150.0));
    assert_eq!(
        out,
        vec![
            click_at(0.5, 0.5, Button::Left),
            click_at(0.5, 0.5, Button::Right)
        ]
    );
}

#[test]
fn clicks_on_the_letterbox_bars_send_nothing() {
    let mut g = machine();
    assert!(g.down(mouse(100.0, 250.0), Button::Left, 0.0).is_empty());
    assert!(g.moved(mouse(500.0, 250.0)).is_empty());
    assert!(
        g.frame().is_empty(),
        "the press on the bar swallows its moves"
    );
    assert!(g.up(mouse(500.0, 250.0), Button::Left, 100.0).is_empty());
    assert!(g.tick(10_000.0).is_empty());
    assert!(tap(&mut g, mouse(900.0, 250.0), 20_000.0).is_empty());
    assert!(g.tick(30_000.0).is_empty());
    assert!(g.moved(mouse(900.0, 250.0)).is_empty());
    assert!(!g.wants_frame(), "hover over a bar is not sent");
}

#[test]
fn small_jitter_is_still_a_click() {
    let mut g = machine();
    g.down(mouse(500.0, 250.0), Button::Left, 0.0);
    assert!(g.moved(mouse(503.0, 251.0)).is_empty());
    assert!(g.frame().is_empty());
    assert!(g.up(mouse(503.0, 251.0), Button::Left, 60.0).is_empty());
    assert_eq!(g.tick(400.0), vec![click_at(0.5, 0.5, Button::Left)]);
}

#[test]
fn a_drag_starts_at_the_press_point_moves_once_a_frame_and_ends_at_release() {
    let mut g = machine();
    assert!(g.down(mouse(300.0, 100.0), Button::Left, 0.0).is_empty());
    assert_eq!(
        g.moved(mouse(310.0, 100.0)),
        vec![ClientMessage::Drag {
            phase: DragPhase::Start,
            x: 0.1,
            y: 0.2,
            button: Button::Left,
            seq: None
        }]
    );
    assert!(g.moved(mouse(350.0, 150.0)).is_empty());
    assert!(g.moved(mouse(400.0, 200.0)).is_empty());
    assert!(g.wants_frame());
    let frame = g.frame();
    assert_eq!(frame.len(), 1, "coalesced to one move a frame: {frame:?}");
    assert!(matches!(
        frame[0],
        ClientMessage::Drag { phase: DragPhase::Move, x, y, .. } if (x - 0.3).abs() < 1e-9 && (y - 0.4).abs() < 1e-9
    ));
    assert!(g.frame().is_empty());
    let end = g.up(mouse(450.0, 250.0), Button::Left, 500.0);
    assert!(matches!(
        end.as_slice(),
        [ClientMessage::Drag { phase: DragPhase::End, x, y, .. }] if (x - 0.4).abs() < 1e-9 && (y - 0.5).abs() < 1e-9
    ));
    assert!(g.tick(10_000.0).is_empty(), "a drag is not also a click");
}

#[test]
fn a_drag_leaving_the_image_is_clamped_and_still_ends() {
    let mut g = machine();
    g.down(mouse(700.0, 250.0), Button::Left, 0.0);
    g.moved(mouse(720.0, 250.0));
    g.moved(mouse(2000.0, -50.0));
    assert!(matches!(
        g.frame().as_slice(),
        [ClientMessage::Drag { phase: DragPhase::Move, x, y, .. }] if *x == 1.0 && *y == 0.0
    ));
    assert!(matches!(
        g.up(mouse(-10.0, 900.0), Button::Left, 100.0).as_slice(),
        [ClientMessage::Drag { phase: DragPhase::End, x, y, .. }] if *x == 0.0 && *y == 1.0
    ));
}

#[test]
fn a_right_button_drag_carries_its_button() {
    let mut g = machine();
    g.down(mouse(500.0, 250.0), Button::Right, 0.0);
    let start = g.moved(mouse(520.0, 250.0));
    assert!(matches!(
        start.as_slice(),
        [ClientMessage::Drag {
            button: Button::Right,
            ..
        }]
    ));
    assert!(
        g.up(mouse(520.0, 250.0), Button::Left, 50.0).is_empty(),
        "other button"
    );
    let end = g.up(mouse(520.0, 250.0), Button::Right, 60.0);
    assert!(matches!(
        end.as_slice(),
        [ClientMessage::Drag {
            phase: DragPhase::End,
            button: Button::Right,
            ..
        }]
    ));
}

#[test]
fn a_cancelled_drag_ends_where_it_was() {
    let mut g = machine();
    g.down(mouse(500.0, 250.0), Button::Left, 0.0);
    g.moved(mouse(600.0, 250.0));
    assert!(g.cancel(99).is_empty(), "another pointer");
    assert!(matches!(
        g.cancel(1).as_slice(),
        [ClientMessage::Drag { phase: DragPhase::End, x, .. }] if (*x - 0.7).abs() < 1e-9
    ));
    assert!(g.frame().is_empty());
    assert!(g.up(mouse(600.0, 250.0), Button::Left, 100.0).is_empty());
}

#[test]
fn a_drag_right_after_a_click_sends_the_click_first() {
    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    g.down(mouse(500.0, 250.0), Button::Left, 100.0);
    let out = g.moved(mouse(540.0, 250.0));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], click_at(0.5, 0.5, Button::Left));
    assert!(matches!(
        out[1],
        ClientMessage::Drag {
            phase: DragPhase::Start,
            ..
        }
    ));
}

#[test]
fn hover_moves_are_coalesced_to_one_a_frame() {
    let mut g = machine();
    assert!(g.moved(mouse(300.0, 100.0)).is_empty());
    assert!(g.moved(mouse(400.0, 200.0)).is_empty());
    assert_eq!(
        g.frame(),
        vec![ClientMessage::Move {
            x: 0.3,
            y: 0.4,
            seq: None
        }]
    );
    assert!(g.frame().is_empty());
    assert!(!g.wants_frame());
    assert!(g.moved(finger(400.0, 200.0)).is_empty());
    assert!(!g.wants_frame(), "touch does not hover");
}

#[test]
fn hover_moves_never_overtake_a_held_back_click() {
    let mut g = machine();
    tap(&mut g, mouse(500.0, 250.0), 0.0);
    g.moved(mouse(600.0, 250.0));
    assert!(!g.wants_frame());
    assert!(g.frame().is_empty());
    assert_eq!(g.tick(400.0), vec![click_at(0.5, 0.5, Button::Left)]);
    assert!(g.wants_frame());
    assert_eq!(
        g.frame(),
        vec![ClientMessage::Move {
            x: 0.7,
            y: 0.5,
            seq: None
        }]
    );
}

#[test]
fn a_tap_is_a_click_and_a_double_tap_a_double_click() {
    let mut g = machine();
    assert!(tap(&mut g, finger(500.0, 250.0), 0.0).is_empty());
    assert_eq!(g.tick(400.0), vec![click_at(0.5, 0.5, Button::Left)]);
    tap(&mut g, finger(500.0, 250.0), 1000.0);
    // Fingers land less precisely than a mouse: 20 px off is still a double tap.
    let out = tap(&mut g, finger(520.0, 250.0), 1200.0);
    assert!(
        matches!(out.as_slice(), [ClientMessage::DoubleClick { .. }]),
        "{out:?}"
    );
}

#[test]
fn a_long_press_is_a_right_click_at_the_deadline() {
    let mut g = machine();
    assert!(g.down(finger(500.0, 250.0), Button::Left, 0.0).is_empty());
    assert!(
        g.moved(finger(505.0, 252.0)).is_empty(),
        "within the touch slop"
    );
    assert_eq!(g.deadline(), Some(LONG_PRESS_MS));
    assert!(g.tick(499.0).is_empty());
    assert_eq!(g.tick(500.0), vec![click_at(0.5, 0.5, Button::Right)]);
    assert!(
        g.moved(finger(600.0, 300.0)).is_empty(),
        "no drag after a long press"
    );
    assert!(g.up(finger(600.0, 300.0), Button::Left, 900.0).is_empty());
    assert!(g.tick(5000.0).is_empty());
}

#[test]
fn a_one_finger_drag_is_a_drag_and_no_long_press() {
    let mut g = machine();
    g.down(finger(500.0, 250.0), Button::Left, 0.0);
    assert!(
        g.moved(finger(508.0, 250.0)).is_empty(),
        "within the touch slop"
    );
    let start = g.moved(finger(530.0, 250.0));
    assert!(matches!(
        start.as_slice(),
        [ClientMessage::Drag {
            phase: DragPhase::Start,
            ..
        }]
    ));
    assert_eq!(g.deadline(), None);
    assert!(g.tick(800.0).is_empty());
    assert_eq!(g.frame().len(), 1);
    let end = g.up(finger(560.0, 250.0), Button::Left, 900.0);
    assert!(matches!(
        end.as_slice(),
        [ClientMessage::Drag {
            phase: DragPhase::End,
            ..
        }]
    ));
}

#[test]
fn a_second_finger_is_ignored() {
    let mut g = machine();
    g.down(finger(500.0, 250.0), Button::Left, 0.0);
    let other = Pointer {
        id: 8,
        ..finger(300.0, 100.0)
    };
    assert!(g.down(other, Button::Left, 10.0).is_empty());
    assert!(g.moved(Pointer { x: 400.0, ..other }).is_empty());
    assert!(g.up(other, Button::Left, 30.0).is_empty());
    g.up(finger(500.0, 250.0), Button::Left, 60.0);
    assert_eq!(g.tick(400.0), vec![click_at(0.5, 0.5, Button::Left)]);
}

#[test]
fn reset_ends_a_drag_and_forgets_the_rest() {
    let mut g = machine();
    g.down(mouse(500.0, 250.0), Button::Left, 0.0);
    g.moved(mouse(600.0, 250.0));
    let out = g.reset();
    assert!(matches!(
        out.as_slice(),
        [ClientMessage::Drag {
            phase: DragPhase::End,
            ..
        }]
    ));
    assert!(!g.wants_frame());
    assert!(g.up(mouse(600.0, 250.0), Button::Left, 10.0).is_empty());
    tap(&mut g, mouse(500.0, 250.0), 100.0);
    assert!(g.reset().is_empty());
    assert!(g.tick(10_000.0).is_empty(), "held-back click dropped");
}

#[test]
fn nothing_is_sent_before_the_image_size_is_known() {
    let mut g = Gestures::new();
    assert!(tap(&mut g, mouse(10.0, 10.0), 0.0).is_empty());
    assert!(g.moved(mouse(20.0, 20.0)).is_empty());
    assert!(g.tick(10_000.0).is_empty());
    assert!(g.frame().is_empty());
}
