//! Short key fingerprints that two people can compare over a phone line (issue #15).
//!
//! A fingerprint is the first 64 bits of a key id (the key id is the sha256 of the
//! canonical TUF key object, so these bits commit to the key), shown two ways:
//!
//! - 16 hex digits in groups of four: `3f9a c012 77de 4b10`;
//! - six words of the BIP-39 English list (2,048 words, 11 bits each): the 64 bits
//!   followed by two zero bits, most significant first. The list was made for
//!   people reading words to each other: common words, each identified by its
//!   first four letters.
//!
//! An attacker who wants another key to pass must find one whose key id shares
//! these 64 bits: a second preimage of 64 bits of sha256, out of reach.

use std::fmt;

use super::KeyId;

/// Words in a fingerprint.
pub const WORDS: usize = 6;
/// Hex digits in a fingerprint.
pub const HEX_DIGITS: usize = 16;

/// The short, human-comparable form of a key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

/// Why a fingerprint could not be computed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The key id does not start with 16 hex digits (not a sha256 key id).
    #[error("key id {keyid:?} does not start with 16 hex digits")]
    KeyId {
        /// The key id (clipped).
        keyid: String,
    },
    /// What was typed is neither 16 hex digits nor six words of the list.
    #[error(
        "{typed:?} is not a fingerprint: give the 16 hex digits (spaces allowed, e.g. \
         `3f9a c012 77de 4b10`) or the six words the requester read to you"
    )]
    Unreadable {
        /// What was typed (clipped).
        typed: String,
    },
    /// A word is not on the list (a typo, or a word misheard).
    #[error("{word:?} is not a fingerprint word (BIP-39 English list): check the spelling")]
    UnknownWord {
        /// The word (clipped).
        word: String,
    },
    /// Six words whose last two bits are not zero: no key id gives these words.
    #[error("these six words are not a fingerprint (the last word is wrong)")]
    Padding,
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

impl Fingerprint {
    /// The fingerprint of `keyid` (its first 16 hex digits).
    pub fn of(keyid: &KeyId) -> Result<Self, FingerprintError> {
        let bad = || FingerprintError::KeyId {
            keyid: clip(&keyid.0),
        };
        let head = keyid.0.get(..HEX_DIGITS).ok_or_else(bad)?;
        if !head.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u64::from_str_radix(head, 16).map(Self).map_err(|_| bad())
    }

    /// Read what an administrator typed: 16 hex digits (any case, spaces, `-` or
    /// `:` between them), or six words (any case, separated by spaces, `-` or `,`).
    pub fn parse(typed: &str) -> Result<Self, FingerprintError> {
        let unreadable = || FingerprintError::Unreadable { typed: clip(typed) };
        let hex: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | ':'))
            .collect();
        if hex.len() == HEX_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u64::from_str_radix(&hex, 16)
                .map(Self)
                .map_err(|_| unreadable());
        }
        let words: Vec<String> = typed
            .split(|c: char| c.is_whitespace() || matches!(c, '-' | ','))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.len() != WORDS {
            return Err(unreadable());
        }
        let list = bip39::Language::English;
        let mut bits: u128 = 0;
        for w in &words {
            let index = list
                .find_word(w)
                .ok_or_else(|| FingerprintError::UnknownWord { word: clip(w) })?;
            bits = (bits << 11) | u128::from(index);
        }
        if bits & 0b11 != 0 {
            return Err(FingerprintError::Padding);
        }
        u64::try_from(bits >> 2)
            .map(Self)
            .map_err(|_| FingerprintError::Padding)
    }

    /// `3f9a c012 77de 4b10`.
    pub fn hex(&self) -> String {
        let h = format!("{:016x}", self.0);
        [&h[0..4], &h[4..8], &h[8..12], &h[12..16]].join(" ")
    }

    /// The six words, lower case.
    pub fn words(&self) -> [&'static str; WORDS] {
        let list = bip39::Language::English.word_list();
        let bits = u128::from(self.0) << 2;
        std::array::from_fn(|i| {
            let shift = 11 * (WORDS - 1 - i);
            // 11 bits: always < 2048, the list's length.
            list[((bits >> shift) & 0x7ff) as usize]
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.hex(), self.words().join(" "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId(s.to_owned())
    }

    #[test]
    fn hex_is_the_key_ids_first_sixteen_digits_grouped() {
        let f = Fingerprint::of(&id("3f9ac01277de4b10ffff0000")).unwrap();
        assert_eq!(f.hex(), "3f9a c012 77de 4b10");
    }

    #[test]
    fn words_encode_eleven_bits_each_most_significant_first() {
        let list = bip39::Language::English.word_list();
        // All zero bits: the first word six times.
        assert_eq!(
            Fingerprint::of(&id("0000000000000000")).unwrap().words(),
            [list[0]; 6]
        );
        // All 64 bits set, then two zero pad bits: five last words, then 0b111111111_00.
        let f = Fingerprint::of(&id("ffffffffffffffff")).unwrap();
        let mut want = [list[2047]; 6];
        want[5] = list[2044];
        assert_eq!(f.words(), want);
        // The top bit alone is the first word's top bit.
        let f = Fingerprint::of(&id("8000000000000000")).unwrap();
        assert_eq!(
            f.words(),
            [list[1024], list[0], list[0], list[0], list[0], list[0]]
        );
    }

    #[test]
    fn hex_and_words_both_read_back_to_the_same_fingerprint() {
        for k in ["3f9ac01277de4b10", "0123456789abcdef", "fedcba9876543210"] {
            let f = Fingerprint::of(&id(k)).unwrap();
            assert_eq!(Fingerprint::parse(&f.hex()).unwrap(), f);
            assert_eq!(Fingerprint::parse(&f.hex().to_uppercase()).unwrap(), f);
            assert_eq!(Fingerprint::parse(k).unwrap(), f);
            let words = f.words().join(" ");
            assert_eq!(Fingerprint::parse(&words).unwrap(), f);
            assert_eq!(Fingerprint::parse(&words.to_uppercase()).unwrap(), f);
            assert_eq!(Fingerprint::parse(&f.words().join("-")).unwrap(), f);
        }
    }

    #[test]
    fn one_changed_digit_or_word_is_another_fingerprint() {
        let f = Fingerprint::of(&id("3f9ac01277de4b10")).unwrap();
        assert_ne!(Fingerprint::parse("3f9a c012 77de 4b11").unwrap(), f);
        let mut w = f.words();
        w[2] = if w[2] == "zoo" { "abandon" } else { "zoo" };
        // A different middle word decodes to different bits (or is refused).
        assert_ne!(Fingerprint::parse(&w.join(" ")).ok(), Some(f));
    }

    #[test]
    fn unreadable_fingerprints_are_refused_with_the_reason() {
        assert!(matches!(
            Fingerprint::parse("3f9a c012"),
            Err(FingerprintError::Unreadable { .. })
        ));
        assert!(matches!(
            Fingerprint::parse("abandon ability able about above notaword"),
            Err(FingerprintError::UnknownWord { .. })
        ));
        // "zoo" is index 2047: its low two bits are the pad, which must be zero.
        assert_eq!(
            Fingerprint::parse("abandon abandon abandon abandon abandon zoo"),
            Err(FingerprintError::Padding)
        );
        assert!(Fingerprint::of(&id("3f9a")).is_err());
        assert!(Fingerprint::of(&id("zzzzzzzzzzzzzzzzzz")).is_err());
        assert!(Fingerprint::of(&id("é3456789abcdef0123")).is_err());
    }
}
