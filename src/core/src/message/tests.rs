// SPDX-License-Identifier: GPL-2.0

use super::*;
use proptest::prelude::*;

fn parse_words(words: &[&str]) -> Result<Message, MessageError> {
    parse(words, 1000)
}

#[test]
fn parses_every_verb() {
    assert_eq!(parse_words(&["remap", "7"]), Ok(Message::Remap { sector: 7 }));
    assert_eq!(parse_words(&["unremap", "0"]), Ok(Message::Unremap { sector: 0 }));
    assert_eq!(parse_words(&["clear_pending", "999"]), Ok(Message::ClearPending { sector: 999 }));
    assert_eq!(parse_words(&["list"]), Ok(Message::List { start: 0, count: u64::MAX }));
    assert_eq!(parse_words(&["list", "8"]), Ok(Message::List { start: 8, count: u64::MAX }));
    assert_eq!(parse_words(&["list", "8", "2"]), Ok(Message::List { start: 8, count: 2 }));
    assert_eq!(parse_words(&["stats"]), Ok(Message::Stats));
    assert_eq!(parse_words(&["clear_stats"]), Ok(Message::ClearStats));
    assert_eq!(parse_words(&["help"]), Ok(Message::Help));
    assert_eq!(parse_words(&["commit"]), Ok(Message::Commit));
    assert_eq!(parse_words(&["scan", "start"]), Ok(Message::Scan(ScanCommand::Start)));
    assert_eq!(parse_words(&["scan", "stop"]), Ok(Message::Scan(ScanCommand::Stop)));
    assert_eq!(parse_words(&["scan", "now"]), Ok(Message::Scan(ScanCommand::Now)));
}

#[test]
fn refuses_malformed_messages() {
    use MessageError::*;
    let cases: &[(&[&str], MessageError)] = &[
        (&[], Empty),
        (&["frobnicate"], UnknownVerb),
        (&["REMAP", "1"], UnknownVerb),
        (&["remap"], BadArguments),
        (&["remap", "1", "2"], BadArguments),
        (&["remap", "-1"], BadArguments),
        (&["remap", "0x10"], BadArguments),
        (&["remap", ""], BadArguments),
        (&["remap", "99999999999999999999999"], BadArguments),
        (&["remap", "1000"], SectorOutOfRange),
        (&["unremap", "x"], BadArguments),
        (&["clear_pending"], BadArguments),
        (&["list", "a"], BadArguments),
        (&["list", "1", "b"], BadArguments),
        (&["list", "1", "2", "3"], BadArguments),
        (&["stats", "now"], BadArguments),
        (&["clear_stats", "1"], BadArguments),
        (&["help", "me"], BadArguments),
        (&["commit", "now"], BadArguments),
        (&["scan"], BadArguments),
        (&["scan", "go"], BadArguments),
        (&["scan", "START"], BadArguments),
        (&["scan", "now", "please"], BadArguments),
    ];
    for (words, want) in cases {
        assert_eq!(parse_words(words), Err(*want), "{words:?}");
    }
}

#[test]
fn errors_have_messages() {
    for e in [MessageError::Empty, MessageError::UnknownVerb, MessageError::BadArguments, MessageError::SectorOutOfRange] {
        assert!(!e.message().to_bytes().is_empty());
    }
}

#[test]
fn help_names_every_verb() {
    for verb in ["remap", "unremap", "clear_pending", "list", "stats", "clear_stats", "commit", "scan", "help"] {
        assert!(HELP.lines().any(|l| l.split(' ').next() == Some(verb)), "{verb}");
    }
}

proptest! {
    #[test]
    fn parse_never_panics(words in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..6), len in any::<u64>()) {
        let _ = parse(&words, len);
    }

    #[test]
    fn sectors_in_range_are_accepted(len in 1u64.., s in any::<u64>()) {
        let text = s.to_string();
        let r = parse(&["remap", text.as_str()], len);
        if s < len { prop_assert_eq!(r, Ok(Message::Remap { sector: s })) } else { prop_assert_eq!(r, Err(MessageError::SectorOutOfRange)) }
    }
}
