//! The contents of the card's files, laid out as a real Belgian eID lays them out: the identity
//! (4031) and address (4033) files in simple TLV, the national register's signature files, the
//! certificate files with their trailing zero padding, and a synthetic photo.
//!
//! Pure functions from data to bytes: no keys are generated here and nothing is signed here
//! (see `personalise`). Layout facts come from the Fedict eid-mw documentation ("ID and Address
//! file contents", the applet 1.7 and 1.8 content documents); where a detail is not documented
//! the choice is marked *assumed*.

use busloket_hardware::{Address, CardIdentity, DocumentType, Sex};
use sha2::{Digest, Sha256, Sha384};

use crate::profile::Profile;

/// Identity file tags (file 4031).
pub mod tag {
    pub const FILE_STRUCTURE_VERSION: u8 = 0x00;
    pub const CARD_NUMBER: u8 = 0x01;
    pub const CHIP_NUMBER: u8 = 0x02;
    pub const VALIDITY_BEGIN: u8 = 0x03;
    pub const VALIDITY_END: u8 = 0x04;
    pub const DELIVERING_MUNICIPALITY: u8 = 0x05;
    pub const NATIONAL_NUMBER: u8 = 0x06;
    pub const SURNAME: u8 = 0x07;
    pub const FIRST_NAMES: u8 = 0x08;
    pub const THIRD_NAME_INITIAL: u8 = 0x09;
    pub const NATIONALITY: u8 = 0x0A;
    pub const BIRTH_PLACE: u8 = 0x0B;
    pub const BIRTH_DATE: u8 = 0x0C;
    pub const SEX: u8 = 0x0D;
    pub const DOCUMENT_TYPE: u8 = 0x0F;
    pub const PHOTO_HASH: u8 = 0x11;
    pub const BASIC_KEY_HASH: u8 = 0x1A;
    pub const EU_REGISTRATION_DATE: u8 = 0x1F;
    /// Address file (4033) tags.
    pub const ADDRESS_STREET_AND_NUMBER: u8 = 0x01;
    pub const ADDRESS_ZIP: u8 = 0x02;
    pub const ADDRESS_MUNICIPALITY: u8 = 0x03;
}

/// The address file is a fixed 117 bytes, zero padded after the TLVs.
pub const ADDRESS_FILE_LENGTH: usize = 117;

/// ECDSA P-384 signature files (4032, 4034 on applet 1.8) hold a DER signature followed by
/// zeros up to a fixed length. 104 bytes is the longest DER P-384 signature (*assumed* to be
/// the card's file size).
pub const EC_SIGNATURE_FILE_LENGTH: usize = 104;

/// The language the card is printed in. It decides the letter for "female" (`V` in Dutch, `F`
/// in French, `W` in German), the month names and the birth date's separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardLanguage {
    Nl,
    Fr,
    De,
}

impl CardLanguage {
    /// Recognises the language from what a `CardIdentity` keeps of it: German cards write the
    /// birth date with dots, French cards use French month names or the nationality "Belge".
    pub fn of(identity: &CardIdentity) -> CardLanguage {
        const FRENCH_ONLY_MONTHS: [&str; 7] =
            ["FEV", "MARS", "AVR", "JUIN", "JUIL", "AOUT", "SEPT"];
        if identity.birth_date_text.contains('.') || identity.nationality.starts_with("Belgier") {
            return CardLanguage::De;
        }
        let french_month = identity
            .birth_date_text
            .split(' ')
            .any(|part| FRENCH_ONLY_MONTHS.contains(&part));
        if french_month || identity.nationality == "Belge" {
            CardLanguage::Fr
        } else {
            CardLanguage::Nl
        }
    }
}

/// Appends one simple-TLV element: a one-byte tag, the length as bytes of `FF` (each meaning
/// 255 more) followed by the remainder, then the value.
pub fn push_tlv(file: &mut Vec<u8>, tag: u8, value: &[u8]) {
    file.push(tag);
    let mut remaining = value.len();
    while remaining >= 255 {
        file.push(0xFF);
        remaining -= 255;
    }
    // The loop leaves less than 255.
    file.push(remaining as u8);
    file.extend_from_slice(value);
}

/// What goes into the identity file besides the `CardIdentity` itself.
#[derive(Debug, Clone, Default)]
pub struct IdentityExtras {
    /// Tag 11: the hash of the photo file (SHA-256 on 1.7 cards here, SHA-384 on 1.8).
    pub photo_hash: Vec<u8>,
    /// Tag 1A (applet 1.8): SHA-384 of the basic key file 4040.
    pub basic_key_hash: Option<Vec<u8>>,
    /// More tags (for example ones added after 2021 that readers must skip), merged in
    /// ascending tag order.
    pub additional_tags: Vec<(u8, Vec<u8>)>,
}

/// The identity file (4031): tags in ascending order, no padding.
pub fn identity_file(
    identity: &CardIdentity,
    profile: Profile,
    extras: &IdentityExtras,
) -> Vec<u8> {
    let language = CardLanguage::of(identity);
    let card_date = |date: chrono::NaiveDate| date.format("%d.%m.%Y").to_string().into_bytes();
    let mut elements: Vec<(u8, Vec<u8>)> = vec![
        // Assumed: the structure version bytes are not documented per applet.
        (
            tag::FILE_STRUCTURE_VERSION,
            match profile {
                Profile::Applet17 => vec![0x00, 0x03],
                Profile::Applet18 => vec![0x00, 0x04],
            },
        ),
        (tag::CARD_NUMBER, identity.card_number.clone().into_bytes()),
        (tag::CHIP_NUMBER, chip_number_bytes(&identity.chip_number)),
        (tag::VALIDITY_BEGIN, card_date(identity.valid_from)),
        (tag::VALIDITY_END, card_date(identity.valid_until)),
        // CardIdentity does not keep the delivering municipality; the citizen's own
        // municipality is what it is for most cards.
        (
            tag::DELIVERING_MUNICIPALITY,
            identity.address.municipality.clone().into_bytes(),
        ),
        (
            tag::NATIONAL_NUMBER,
            identity.national_number.clone().into_bytes(),
        ),
        (tag::SURNAME, identity.surname.clone().into_bytes()),
        (tag::FIRST_NAMES, identity.first_names.clone().into_bytes()),
        (
            tag::THIRD_NAME_INITIAL,
            identity.first_letter_third_name.clone().into_bytes(),
        ),
        (tag::NATIONALITY, identity.nationality.clone().into_bytes()),
        (tag::BIRTH_PLACE, identity.birth_place.clone().into_bytes()),
        (
            tag::BIRTH_DATE,
            identity.birth_date_text.clone().into_bytes(),
        ),
        (tag::SEX, vec![sex_letter(identity.sex, language)]),
        // Two ASCII digits ("01", "06", "31"): assumed; readers should accept "1" as well.
        (
            tag::DOCUMENT_TYPE,
            format!("{:02}", identity.document_type.code()).into_bytes(),
        ),
        (tag::PHOTO_HASH, extras.photo_hash.clone()),
    ];
    if let Some(basic_key_hash) = &extras.basic_key_hash {
        elements.push((tag::BASIC_KEY_HASH, basic_key_hash.clone()));
    }
    if matches!(identity.document_type, DocumentType::ForeignerCard { .. }) {
        elements.push((tag::EU_REGISTRATION_DATE, card_date(identity.valid_from)));
    }
    elements.extend(extras.additional_tags.iter().cloned());
    elements.sort_by_key(|(tag, _)| *tag);

    let mut file = Vec::with_capacity(256);
    for (tag, value) in &elements {
        push_tlv(&mut file, *tag, value);
    }
    file
}

/// The address file (4033): structure version, street and number, zip, municipality, then
/// zeros up to 117 bytes. An address longer than that is kept whole.
pub fn address_file(address: &Address) -> Vec<u8> {
    let mut file = Vec::with_capacity(ADDRESS_FILE_LENGTH);
    // Assumed: version bytes 00 01 (the documents name the tag, not its value).
    push_tlv(&mut file, tag::FILE_STRUCTURE_VERSION, &[0x00, 0x01]);
    push_tlv(
        &mut file,
        tag::ADDRESS_STREET_AND_NUMBER,
        address.street_and_number.as_bytes(),
    );
    push_tlv(&mut file, tag::ADDRESS_ZIP, address.zip.as_bytes());
    push_tlv(
        &mut file,
        tag::ADDRESS_MUNICIPALITY,
        address.municipality.as_bytes(),
    );
    if file.len() < ADDRESS_FILE_LENGTH {
        file.resize(ADDRESS_FILE_LENGTH, 0);
    }
    file
}

/// The address file without its trailing zero padding: the first half of the message the
/// address signature covers.
pub fn trim_trailing_zeros(file: &[u8]) -> &[u8] {
    let end = file
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    &file[..end]
}

/// The message the address signature (4034) covers: the address file without its trailing
/// zeros, followed by the identity signature file (4032) as stored.
pub fn address_signature_message(address_file: &[u8], identity_signature_file: &[u8]) -> Vec<u8> {
    let mut message = trim_trailing_zeros(address_file).to_vec();
    message.extend_from_slice(identity_signature_file);
    message
}

/// A signature as the card stores it: RSA signatures as they are, DER ECDSA signatures zero
/// padded to [`EC_SIGNATURE_FILE_LENGTH`].
pub fn signature_file(profile: Profile, signature: Vec<u8>) -> Vec<u8> {
    match profile {
        Profile::Applet17 => signature,
        Profile::Applet18 => pad_with_zeros(signature, EC_SIGNATURE_FILE_LENGTH),
    }
}

/// The photo hash of tag 11: SHA-256 on applet 1.7 here, SHA-384 on applet 1.8. The reader
/// picks the algorithm from the hash length.
pub fn photo_hash(profile: Profile, photo: &[u8]) -> Vec<u8> {
    match profile {
        Profile::Applet17 => Sha256::digest(photo).to_vec(),
        Profile::Applet18 => Sha384::digest(photo).to_vec(),
    }
}

/// A certificate file: the DER followed by zeros (50 bytes more on 1.7 cards, 1100 on 1.8).
/// `None` is an absent certificate: a file of zeros only (1300 / 2500 bytes).
pub fn certificate_file(profile: Profile, der: Option<&[u8]>) -> Vec<u8> {
    let (slack, absent_length) = match profile {
        Profile::Applet17 => (50, 1300),
        Profile::Applet18 => (1100, 2500),
    };
    match der {
        Some(der) => pad_with_zeros(der.to_vec(), der.len() + slack),
        None => vec![0; absent_length],
    }
}

fn pad_with_zeros(mut bytes: Vec<u8>, length: usize) -> Vec<u8> {
    if bytes.len() < length {
        bytes.resize(length, 0);
    }
    bytes
}

/// The chip number as the card stores it (16 bytes): the hexadecimal text decoded, or the text
/// itself when it is not hexadecimal.
pub fn chip_number_bytes(chip_number: &str) -> Vec<u8> {
    let digits: Option<Vec<u8>> = chip_number
        .chars()
        .map(|c| c.to_digit(16).map(|digit| digit as u8))
        .collect();
    match digits {
        Some(digits) if digits.len() % 2 == 0 => digits
            .chunks(2)
            .map(|pair| (pair[0] << 4) | pair[1])
            .collect(),
        _ => chip_number.as_bytes().to_vec(),
    }
}

fn sex_letter(sex: Sex, language: CardLanguage) -> u8 {
    match (sex, language) {
        (Sex::M, _) => b'M',
        (Sex::X, _) => b'X',
        (Sex::F, CardLanguage::Nl) => b'V',
        (Sex::F, CardLanguage::Fr) => b'F',
        (Sex::F, CardLanguage::De) => b'W',
    }
}

/// A synthetic passport photo: an 8-bit grey baseline JPEG (140×200 on applet 1.7, 150×195 on
/// 1.8, as real cards) showing a head-and-shoulders silhouette on a light background with a
/// texture derived from `seed_text` (the national number), so every card's photo and photo
/// hash differ. Deterministic; typically 2–4 KB, like a real card's photo.
pub fn synthetic_photo(profile: Profile, seed_text: &str) -> Vec<u8> {
    let (width, height): (u16, u16) = match profile {
        Profile::Applet17 => (140, 200),
        Profile::Applet18 => (150, 195),
    };
    let seed = Sha256::digest(seed_text.as_bytes());
    let (w, h) = (f32::from(width), f32::from(height));
    let mut pixels = Vec::with_capacity(usize::from(width) * usize::from(height));
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (f32::from(x), f32::from(y));
            let head =
                ((fx - w / 2.0) / (w * 0.22)).powi(2) + ((fy - h * 0.38) / (h * 0.2)).powi(2);
            let shoulders = fy > h * 0.62 && (fx - w / 2.0).abs() < (fy - h * 0.5) * 1.1;
            // A gentle, seed-dependent texture so that photos (and their hashes) differ.
            let index = (usize::from(x / 10) + usize::from(y / 10) * 3) % seed.len();
            let texture = seed[index] / 16;
            let value = if head <= 1.0 {
                90 + texture
            } else if shoulders {
                60 + texture
            } else {
                200 + texture
            };
            pixels.push(value);
        }
    }
    let mut jpeg = Vec::with_capacity(4096);
    let encoded = jpeg_encoder::Encoder::new(&mut jpeg, 80).encode(
        &pixels,
        width,
        height,
        jpeg_encoder::ColorType::Luma,
    );
    match encoded {
        Ok(()) => jpeg,
        // Encoding a well-formed in-memory greyscale image cannot fail; an empty photo would
        // fail the photo-hash tests loudly.
        Err(_) => Vec::new(),
    }
}
