//! The simple-TLV encoding of the eID identity and address files.
//!
//! Each field is one tag byte, a length, and that many value bytes. The length is one byte, except
//! that `FF` means "255 plus the next length byte", which may itself be `FF` again (`FF FF 03` is
//! 513). Files start with tag `00` (the file structure version); a tag `00` after the first field
//! is the start of the zero padding some files carry, and ends the file. Unknown tags are returned
//! like known ones: the caller decides what to skip.
//!
//! The parser never panics and never allocates more than one [`TlvField`] per two input bytes.

use std::fmt;

/// One field of a TLV file, borrowing its value from the file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TlvField<'a> {
    pub tag: u8,
    /// Where the field's tag byte is in the file.
    pub offset: usize,
    pub value: &'a [u8],
}

impl fmt::Debug for TlvField<'_> {
    /// Shows the tag, offset and length only: values may be a national number or an address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlvField {{ tag: 0x{:02X}, offset: {}, len: {} }}",
            self.tag,
            self.offset,
            self.value.len()
        )
    }
}

/// Why a TLV file could not be split into fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("the field with tag 0x{tag:02X} at offset {offset} has no complete length")]
    TruncatedLength { tag: u8, offset: usize },
    #[error(
        "the field with tag 0x{tag:02X} at offset {offset} declares {declared} bytes but only {available} remain"
    )]
    TruncatedValue {
        tag: u8,
        offset: usize,
        declared: usize,
        available: usize,
    },
}

/// Splits a TLV file into its fields, in file order, stopping at the end of the bytes or at a
/// tag `00` that is not the first field (trailing zero padding).
pub fn parse_tlv(bytes: &[u8]) -> Result<Vec<TlvField<'_>>, TlvError> {
    let mut fields = Vec::new();
    let mut position = 0;
    while let Some(&tag) = bytes.get(position) {
        if tag == 0x00 && !fields.is_empty() {
            break;
        }
        let offset = position;
        position += 1;
        let mut declared = 0usize;
        loop {
            let Some(&length_byte) = bytes.get(position) else {
                return Err(TlvError::TruncatedLength { tag, offset });
            };
            position += 1;
            // At most 255 per input byte: cannot overflow for any slice.
            declared += usize::from(length_byte);
            if length_byte != 0xFF {
                break;
            }
        }
        let available = bytes.len() - position;
        if declared > available {
            return Err(TlvError::TruncatedValue {
                tag,
                offset,
                declared,
                available,
            });
        }
        fields.push(TlvField {
            tag,
            offset,
            value: &bytes[position..position + declared],
        });
        position += declared;
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags_and_values(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        parse_tlv(bytes)
            .unwrap()
            .into_iter()
            .map(|field| (field.tag, field.value.to_vec()))
            .collect()
    }

    #[test]
    fn short_fields_and_padding() {
        let bytes = [0x00, 0x01, 0x01, 0x01, 0x02, b'a', b'b', 0x00, 0x00, 0x00];
        assert_eq!(
            tags_and_values(&bytes),
            vec![(0x00, vec![0x01]), (0x01, b"ab".to_vec())]
        );
    }

    #[test]
    fn long_lengths_add_up() {
        for length in [254usize, 255, 256, 509, 510, 511, 800] {
            let mut bytes = vec![0x00, 0x00, 0x07];
            let mut rest = length;
            while rest >= 255 {
                bytes.push(0xFF);
                rest -= 255;
            }
            bytes.push(rest as u8);
            bytes.extend(std::iter::repeat_n(b'x', length));
            let fields = parse_tlv(&bytes).unwrap();
            assert_eq!(fields.len(), 2);
            assert_eq!(fields[1].value.len(), length, "length {length}");
        }
    }

    #[test]
    fn a_file_without_version_tag_still_parses() {
        assert_eq!(
            tags_and_values(&[0x01, 0x01, b'x', 0x00, 0x00]),
            vec![(0x01, b"x".to_vec())]
        );
        assert_eq!(tags_and_values(&[]), vec![]);
    }

    #[test]
    fn truncation_is_reported_with_its_offset() {
        assert_eq!(
            parse_tlv(&[0x00, 0x00, 0x05]),
            Err(TlvError::TruncatedLength {
                tag: 0x05,
                offset: 2
            })
        );
        assert_eq!(
            parse_tlv(&[0x00, 0x00, 0x05, 0xFF]),
            Err(TlvError::TruncatedLength {
                tag: 0x05,
                offset: 2
            })
        );
        let error = parse_tlv(&[0x00, 0x00, 0x07, 0x04, b'a']).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the field with tag 0x07 at offset 2 declares 4 bytes but only 1 remain"
        );
    }
}
