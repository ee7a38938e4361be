//! Keys to actions. The same key can mean different things: while a filter or a
//! screen name is being typed every printable key is text; in a confirmation only
//! y/n/Enter/Esc count, and ←/→ change a replay's time range.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{Action, App, Detail, Screen};

/// Every key, as the help overlay and the README list them: (keys, what they do).
pub const KEYS: &[(&str, &str)] = &[
    ("1-7, Tab, S-Tab", "switch screen"),
    (":", "jump to a screen by name (:queues, :fail, :5)"),
    ("↑↓, j k", "move the selection (it stays on its object)"),
    ("PgUp PgDn, g G", "page up/down, first/last row"),
    ("Enter", "open the detail of the selected object"),
    ("/", "filter this screen (Enter keeps it, Esc clears it)"),
    ("s / S", "sort by the next column / reverse the order"),
    ("r", "Failures, delivery detail: retry the delivery"),
    ("R", "Queues, queue detail: replay dead (←/→ range)"),
    (
        "p / t",
        "Queues, queue detail: pause or resume / test delivery",
    ),
    ("C", "Queues, queue detail: close (reset) an open circuit"),
    (
        "E / D",
        "Queues, queue detail: edit / delete the subscription",
    ),
    (
        "Tab, Space",
        "edit form: next field, toggle enabled (Enter saves)",
    ),
    (
        "e / x / M",
        "Agents, agent detail: on/off, run now, clear memory",
    ),
    ("c", "Events: clear the live tail"),
    (
        "K / N",
        "credentials (never values) / this node and cluster",
    ),
    ("F5, Ctrl-R", "refresh now (reloads an open detail)"),
    ("y / n", "confirm / cancel an action"),
    ("?", "this help"),
    ("q, Esc", "back: close, clear filter, Overview, quit"),
    ("Ctrl-C", "quit"),
];

pub fn action_for(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.confirm.is_some() {
        return match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Yes),
            KeyCode::Enter => Some(Action::Open),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                Some(Action::No)
            }
            // A replay's time range.
            KeyCode::Right | KeyCode::Tab | KeyCode::Char('l') => Some(Action::NextScreen),
            KeyCode::Left | KeyCode::BackTab | KeyCode::Char('h') => Some(Action::PrevScreen),
            _ => None,
        };
    }
    // The edit form: keys are text for its fields.
    if matches!(app.detail, Some(Detail::Edit(_))) {
        return match key.code {
            KeyCode::Char(c) => Some(Action::PromptChar(c)),
            KeyCode::Backspace => Some(Action::PromptBackspace),
            KeyCode::Enter => Some(Action::PromptDone),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Up | KeyCode::BackTab => Some(Action::Up),
            KeyCode::Down | KeyCode::Tab => Some(Action::Down),
            _ => None,
        };
    }
    if ctrl && key.code == KeyCode::Char('r') {
        return Some(Action::Refresh);
    }
    if app.prompt.is_some() && !app.help {
        return match key.code {
            KeyCode::Char(c) => Some(Action::PromptChar(c)),
            KeyCode::Backspace => Some(Action::PromptBackspace),
            KeyCode::Enter => Some(Action::PromptDone),
            KeyCode::Esc => Some(Action::Back),
            _ => None,
        };
    }
    let a = match key.code {
        KeyCode::Char('q') | KeyCode::Esc => Action::Back,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char(c @ '1'..='7') => Action::Goto(Screen::ALL[(c as u8 - b'1') as usize]),
        KeyCode::Tab => Action::NextScreen,
        KeyCode::BackTab => Action::PrevScreen,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Enter => Action::Open,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(':') => Action::StartJump,
        KeyCode::Char('s') => Action::SortNext,
        KeyCode::Char('S') => Action::SortReverse,
        KeyCode::Char('r') => Action::Retry,
        KeyCode::Char('R') => Action::ReplayDead,
        KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Char('t') => Action::TestDelivery,
        KeyCode::Char('C') => Action::ResetCircuit,
        KeyCode::Char('E') => Action::EditSub,
        KeyCode::Char('D') => Action::DeleteSub,
        KeyCode::Char('e') => Action::ToggleAgent,
        KeyCode::Char('x') => Action::RunAgent,
        KeyCode::Char('M') => Action::ClearMemory,
        KeyCode::Char('c') => Action::ClearEvents,
        KeyCode::Char('K') => Action::Credentials,
        KeyCode::Char('N') => Action::Nodes,
        KeyCode::F(5) => Action::Refresh,
        _ => return None,
    };
    Some(a)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn press(app: &mut App, c: KeyCode) {
        if let Some(a) = action_for(app, key(c)) {
            app.apply(a);
        }
    }

    fn app() -> App {
        App::new("http://x", true, Duration::from_secs(1))
    }

    #[test]
    fn numbers_and_tab_switch_screens_and_q_goes_back_then_quits() {
        let mut a = app();
        press(&mut a, KeyCode::Char('3'));
        assert_eq!(a.screen, Screen::Failures);
        press(&mut a, KeyCode::Tab);
        assert_eq!(a.screen, Screen::Agents);
        press(&mut a, KeyCode::BackTab);
        press(&mut a, KeyCode::BackTab);
        assert_eq!(a.screen, Screen::Queues);
        press(&mut a, KeyCode::Char('q'));
        assert_eq!((a.screen, a.quit), (Screen::Overview, false));
        press(&mut a, KeyCode::Esc);
        assert!(a.quit);
        let mut a = app();
        a.apply(action_for(&a, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)).unwrap());
        assert!(a.quit);
    }

    #[test]
    fn while_filtering_keys_are_text() {
        let mut a = app();
        press(&mut a, KeyCode::Char('6'));
        press(&mut a, KeyCode::Char('/'));
        for c in "q1j?".chars() {
            press(&mut a, KeyCode::Char(c));
        }
        assert_eq!(
            (a.view().filter.as_str(), a.screen, a.quit),
            ("q1j?", Screen::Events, false)
        );
        press(&mut a, KeyCode::Backspace);
        press(&mut a, KeyCode::Enter);
        assert_eq!(a.view().filter, "q1j");
        assert!(a.prompt.is_none());
        // The filter is this screen's: another screen has none.
        press(&mut a, KeyCode::Char('4'));
        assert_eq!(a.view().filter, "");
        press(&mut a, KeyCode::Char('6'));
        // Esc first clears the kept filter, then goes back.
        press(&mut a, KeyCode::Esc);
        assert_eq!((a.view().filter.as_str(), a.screen), ("", Screen::Events));
    }

    #[test]
    fn colon_jumps_to_a_screen_by_name() {
        let mut a = app();
        for (typed, screen) in [
            ("que", Screen::Queues),
            ("FAIL", Screen::Failures),
            ("5", Screen::Endpoints),
            ("ev", Screen::Events),
        ] {
            press(&mut a, KeyCode::Char(':'));
            for c in typed.chars() {
                press(&mut a, KeyCode::Char(c));
            }
            press(&mut a, KeyCode::Enter);
            assert_eq!(a.screen, screen, "{typed}");
        }
        press(&mut a, KeyCode::Char(':'));
        press(&mut a, KeyCode::Char('z'));
        press(&mut a, KeyCode::Enter);
        assert_eq!(a.screen, Screen::Events);
        assert!(
            a.message()
                .is_some_and(|m| m.text.contains("no screen named"))
        );
    }

    #[test]
    fn help_lists_every_key_and_closes() {
        let mut a = app();
        press(&mut a, KeyCode::Char('?'));
        assert!(a.help);
        press(&mut a, KeyCode::Char('2'));
        assert_eq!(
            a.screen,
            Screen::Overview,
            "keys do not leak through the help"
        );
        press(&mut a, KeyCode::Esc);
        assert!(!a.help);
        assert!(!a.quit);
        for k in [
            "/", ":", "s", "S", "r", "R", "p", "t", "C", "E", "D", "e", "x", "M", "c", "K", "N",
            "?", "Enter",
        ] {
            assert!(
                KEYS.iter()
                    .any(|(keys, _)| keys.split([',', ' ']).any(|x| x == k)),
                "{k}"
            );
        }
    }
}
