//! Reading the card without PIN: every file through chunked READ BINARY, the TLV layout of the
//! identity and address files, the T=0 status words, SELECT variants and GET CARD DATA.

use busloket_virtual_eid::files::tag;
use busloket_virtual_eid::{CardSpec, Profile, file, render_transcript};
use expect_test::expect;
use sha2::{Digest, Sha256, Sha384};

use crate::support::{
    FOREIGNER, TOM, card, card_from, citizen, parse_tlv, read_file, select, send, tlv_value,
    transmit,
};

const ALL_FILES: [busloket_virtual_eid::FileId; 10] = [
    file::IDENTITY,
    file::IDENTITY_SIGNATURE,
    file::ADDRESS,
    file::ADDRESS_SIGNATURE,
    file::PHOTO,
    file::AUTHENTICATION_CERTIFICATE,
    file::NON_REPUDIATION_CERTIFICATE,
    file::CA_CERTIFICATE,
    file::ROOT_CERTIFICATE,
    file::RRN_CERTIFICATE,
];

#[test]
fn every_file_reads_back_whole_in_252_byte_chunks() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let mut card = card(profile, TOM);
        for id in ALL_FILES {
            let read = read_file(&mut card, id);
            assert_eq!(Some(read.as_slice()), card.file(id), "{profile} {id:?}");
        }
        let basic_key = card.file(file::BASIC_PUBLIC_KEY).map(<[u8]>::to_vec);
        match profile {
            Profile::Applet17 => {
                assert_eq!(select(&mut card, file::BASIC_PUBLIC_KEY), [0x6A, 0x82])
            }
            Profile::Applet18 => {
                assert_eq!(
                    Some(read_file(&mut card, file::BASIC_PUBLIC_KEY)),
                    basic_key
                );
            }
        }
    }
}

#[test]
fn a_file_whose_size_is_a_multiple_of_252_ends_with_6b00() {
    let mut identity = citizen(TOM);
    // The photo is given, so its size is known: exactly two chunks.
    identity.photo_jpeg = vec![0x5A; 504];
    let mut card = card_from(Profile::Applet18, &CardSpec::new(identity));
    assert_eq!(select(&mut card, file::PHOTO), [0x90, 0x00]);
    assert_eq!(
        send(&mut card, &[0x00, 0xB0, 0x00, 0xFC, 0xFC]).1,
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xB0, 0x01, 0xF8, 0xFC]).1,
        [0x6B, 0x00]
    );
    assert_eq!(read_file(&mut card, file::PHOTO), vec![0x5A; 504]);
}

#[test]
fn identity_file_has_the_real_card_layout() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let mut card = card(profile, TOM);
        let identity = read_file(&mut card, file::IDENTITY);
        let elements = parse_tlv(&identity);
        let tags: Vec<u8> = elements.iter().map(|(tag, _)| *tag).collect();
        assert!(
            tags.windows(2).all(|pair| pair[0] < pair[1]),
            "ascending {tags:02X?}"
        );
        assert_eq!(tags[0], tag::FILE_STRUCTURE_VERSION);
        let text = |tag| {
            String::from_utf8(tlv_value(&elements, tag).expect("tag").to_vec()).expect("utf-8")
        };
        assert_eq!(text(tag::CARD_NUMBER), "592000003115");
        assert_eq!(text(tag::NATIONAL_NUMBER), TOM);
        assert_eq!(text(tag::SURNAME), "Janssens");
        assert_eq!(text(tag::FIRST_NAMES), "Tom Pieter");
        assert_eq!(text(tag::THIRD_NAME_INITIAL), "J");
        assert_eq!(text(tag::BIRTH_DATE), "12 MAAR 1978");
        assert_eq!(text(tag::SEX), "M");
        assert_eq!(text(tag::DOCUMENT_TYPE), "01");
        assert_eq!(text(tag::VALIDITY_BEGIN), "06.05.2019");
        assert_eq!(text(tag::VALIDITY_END), "06.05.2029");
        assert_eq!(
            tlv_value(&elements, tag::CHIP_NUMBER).map(<[u8]>::len),
            Some(16)
        );

        let photo = read_file(&mut card, file::PHOTO);
        assert_eq!(&photo[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
        assert_eq!(
            &photo[photo.len() - 2..],
            &[0xFF, 0xD9],
            "and ends with EOI"
        );
        let photo_hash = tlv_value(&elements, tag::PHOTO_HASH).expect("photo hash");
        match profile {
            Profile::Applet17 => {
                assert_eq!(photo_hash, Sha256::digest(&photo).as_slice());
                assert_eq!(tlv_value(&elements, tag::BASIC_KEY_HASH), None);
            }
            Profile::Applet18 => {
                assert_eq!(photo_hash, Sha384::digest(&photo).as_slice());
                let basic_key = read_file(&mut card, file::BASIC_PUBLIC_KEY);
                assert_eq!((basic_key.len(), &basic_key[..2]), (120, &[0x30, 0x76][..]));
                assert_eq!(
                    tlv_value(&elements, tag::BASIC_KEY_HASH),
                    Some(Sha384::digest(&basic_key).as_slice())
                );
            }
        }
    }
}

#[test]
fn female_letter_and_date_follow_the_card_language() {
    let letters: Vec<(String, String)> = ["80092711839", "77011906222", "48031210579"]
        .into_iter()
        .map(|national_number| {
            let mut card = card(Profile::Applet18, national_number);
            let elements = parse_tlv(&read_file(&mut card, file::IDENTITY));
            let text =
                |tag| String::from_utf8_lossy(tlv_value(&elements, tag).expect("tag")).into_owned();
            (text(tag::SEX), text(tag::BIRTH_DATE))
        })
        .collect();
    assert_eq!(letters[0], ("V".to_owned(), "27 SEP 1980".to_owned()));
    assert_eq!(letters[1].0, "F");
    assert!(letters[2].1.contains('.'), "German date {:?}", letters[2].1);
}

#[test]
fn address_file_is_zero_padded_to_117_bytes() {
    let mut card = card(Profile::Applet17, TOM);
    let address = read_file(&mut card, file::ADDRESS);
    assert_eq!(address.len(), 117);
    let elements = parse_tlv(&address);
    assert_eq!(
        elements,
        vec![
            (0x00, vec![0x00, 0x01]),
            (0x01, b"Demostraat 1".to_vec()),
            (0x02, b"8500".to_vec()),
            (0x03, b"Kortrijk".to_vec()),
        ]
    );
}

#[test]
fn long_fields_and_unknown_tags_are_encoded_like_the_card() {
    let mut identity = citizen(TOM);
    identity.surname = "Vanderhœven-Éloïse ".repeat(16).trim_end().to_owned();
    let mut spec = CardSpec::new(identity.clone());
    spec.additional_identity_tags = vec![(0x1B, b"B".to_vec()), (0x13, b"1".to_vec())];
    let mut card = card_from(Profile::Applet18, &spec);
    let file = read_file(&mut card, file::IDENTITY);
    let elements = parse_tlv(&file);
    assert!(identity.surname.len() > 255);
    assert_eq!(
        tlv_value(&elements, tag::SURNAME),
        Some(identity.surname.as_bytes())
    );
    let surname_at = file
        .windows(2)
        .position(|pair| pair == [tag::SURNAME, 0xFF])
        .expect("an FF-extended length");
    assert_eq!(
        usize::from(file[surname_at + 2]),
        identity.surname.len() - 255
    );
    let tags: Vec<u8> = elements.iter().map(|(tag, _)| *tag).collect();
    assert!(tags.windows(2).all(|pair| pair[0] < pair[1]), "{tags:02X?}");
    assert!(tags.contains(&0x13) && tags.contains(&0x1B));
}

#[test]
fn read_binary_answers_6cxx_6b00_and_6986_like_t0() {
    let mut card = card(Profile::Applet18, TOM);
    assert_eq!(
        send(&mut card, &[0x00, 0xB0, 0x00, 0x00, 0xFC]).1,
        [0x69, 0x86],
        "no EF selected"
    );
    assert_eq!(select(&mut card, file::IDENTITY), [0x90, 0x00]);
    let length = card.file(file::IDENTITY).expect("identity").len();
    let (data, status) = send(&mut card, &[0x00, 0xB0, 0x00, 0x00, 0xFC]);
    assert_eq!((data.len(), status), (0, [0x6C, length as u8]));
    let (data, status) = send(&mut card, &[0x00, 0xB0, 0x00, 0x00, length as u8]);
    assert_eq!((data.len(), status), (length, [0x90, 0x00]));
    let (data, status) = send(&mut card, &[0x00, 0xB0, 0x00, 0x10, 0x08]);
    assert_eq!(
        (data.as_slice(), status),
        (
            &card.file(file::IDENTITY).expect("identity")[16..24],
            [0x90, 0x00]
        )
    );
    let [high, low] = (length as u16).to_be_bytes();
    assert_eq!(
        send(&mut card, &[0x00, 0xB0, high, low, 0x01]).1,
        [0x6B, 0x00],
        "at the end"
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xB0, 0x7F, 0x00, 0x01]).1,
        [0x6B, 0x00],
        "past the end"
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xB0, 0x81, 0x00, 0x01]).1,
        [0x6A, 0x86],
        "no SFI"
    );
    // Le = 00 asks for 256 bytes: the photo has them.
    assert_eq!(select(&mut card, file::PHOTO), [0x90, 0x00]);
    let (data, status) = send(&mut card, &[0x00, 0xB0, 0x00, 0x00, 0x00]);
    assert_eq!((data.len(), status), (256, [0x90, 0x00]));
}

#[test]
fn select_by_aid_file_id_chain_and_path() {
    let mut card = card(Profile::Applet17, TOM);
    let applet = [
        0x00, 0xA4, 0x04, 0x0C, 0x0F, 0xA0, 0x00, 0x00, 0x00, 0x30, 0x29, 0x05, 0x70, 0x00, 0xAD,
        0x13, 0x10, 0x01, 0x01, 0xFF,
    ];
    assert_eq!(send(&mut card, &applet), (vec![], [0x90, 0x00]), "no FCI");
    for fid in [[0x3F, 0x00], [0xDF, 0x01], [0x40, 0x31]] {
        assert_eq!(
            send(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, fid[0], fid[1]]).1,
            [0x90, 0x00]
        );
    }
    assert_eq!(
        transmit(&mut card, &[0x00, 0xB0, 0x00, 0x00, 0x04]).0,
        card.file(file::IDENTITY).expect("id")[..4].to_vec()
    );
    let with_mf = [
        0x00, 0xA4, 0x08, 0x0C, 0x06, 0x3F, 0x00, 0xDF, 0x00, 0x50, 0x38,
    ];
    assert_eq!(send(&mut card, &with_mf).1, [0x90, 0x00]);
    let id_df = [
        0x00, 0xA4, 0x04, 0x0C, 0x0C, 0xA0, 0x00, 0x00, 0x01, 0x77, 0x49, 0x64, 0x46, 0x69, 0x6C,
        0x65, 0x73,
    ];
    assert_eq!(send(&mut card, &id_df).1, [0x90, 0x00]);
    assert_eq!(
        send(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x40, 0x33]).1,
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x38]).1,
        [0x6A, 0x82],
        "not in DF01"
    );
    assert_eq!(
        send(
            &mut card,
            &[0x00, 0xA4, 0x08, 0x0C, 0x04, 0xDF, 0x01, 0x99, 0x99]
        )
        .1,
        [0x6A, 0x82]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xA4, 0x04, 0x0C, 0x03, 0xA0, 0x00, 0x01]).1,
        [0x6A, 0x82]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xA4, 0x03, 0x0C, 0x02, 0x40, 0x31]).1,
        [0x6A, 0x86]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x03, 0x40, 0x31, 0x00]).1,
        [0x67, 0x00]
    );
}

#[test]
fn get_card_data_tells_the_applet_version_and_pin_tries() {
    let mut card_17 = card(Profile::Applet17, TOM);
    let (data, status) = send(&mut card_17, &[0x80, 0xE4, 0x00, 0x00, 0x1C]);
    assert_eq!((data.len(), data[21], status), (28, 0x17, [0x90, 0x00]));
    let chip = busloket_virtual_eid::files::chip_number_bytes(&citizen(TOM).chip_number);
    assert_eq!(
        &data[..16],
        chip.as_slice(),
        "the serial is the chip number"
    );
    assert_eq!(
        send(&mut card_17, &[0x80, 0xE4, 0x00, 0x01, 0x1F]).1,
        [0x6A, 0x86]
    );
    assert_eq!(
        send(&mut card_17, &[0x80, 0xE4, 0x00, 0x00, 0x00]).1,
        [0x6C, 0x1C]
    );

    let mut card_18 = card(Profile::Applet18, TOM);
    let (data, status) = transmit(&mut card_18, &[0x80, 0xE4, 0x00, 0x00, 0x10]);
    assert_eq!((data.len(), data[21], status), (28, 0x18, [0x90, 0x00]));
    let (data, status) = send(&mut card_18, &[0x80, 0xE4, 0x00, 0x01, 0x1F]);
    assert_eq!(
        (data.len(), &data[28..], status),
        (31, &[3, 0xFF, 0xFF][..], [0x90, 0x00])
    );
}

#[test]
fn unknown_instructions_and_classes_are_refused() {
    let mut card = card(Profile::Applet18, TOM);
    assert_eq!(send(&mut card, &[0x00, 0x12, 0x00, 0x00]).1, [0x6D, 0x00]);
    assert_eq!(
        send(&mut card, &[0x80, 0x50, 0x00, 0x00, 0x08]).1,
        [0x6D, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0xB0, 0xB0, 0x00, 0x00, 0xFC]).1,
        [0x6E, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x80, 0xB0, 0x00, 0x00, 0xFC]).1,
        [0x6E, 0x00],
        "ISO command with CLA 80"
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xE4, 0x00, 0x00, 0x1C]).1,
        [0x6E, 0x00],
        "proprietary command with CLA 00"
    );
    assert_eq!(send(&mut card, &[0x00, 0xA4]).1, [0x67, 0x00]);
    assert_eq!(
        send(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x05, 0x40]).1,
        [0x67, 0x00],
        "Lc longer than the data"
    );
}

#[test]
fn foreigner_card_has_its_type_and_ca() {
    let mut card = card(Profile::Applet18, FOREIGNER);
    let elements = parse_tlv(&read_file(&mut card, file::IDENTITY));
    assert_eq!(tlv_value(&elements, tag::DOCUMENT_TYPE), Some(&b"31"[..]));
    assert!(tlv_value(&elements, tag::EU_REGISTRATION_DATE).is_some());
    let ca = read_file(&mut card, file::CA_CERTIFICATE);
    let ca = crate::support::certificate(crate::support::trim_certificate(&ca));
    assert!(
        ca.tbs_certificate
            .subject
            .to_string()
            .contains("Foreigner CA"),
        "{}",
        ca.tbs_certificate.subject
    );
}

#[test]
fn transcript_of_reading_the_identity_file() {
    let mut card = card(Profile::Applet18, TOM);
    read_file(&mut card, file::IDENTITY);
    expect![[r#"
        > 00 A4 08 0C 04 DF 01 40 31
        < 90 00
        > 00 B0 00 00 FC
        < 6C F5
        > 00 B0 00 00 F5
        < [245 bytes] 90 00
    "#]]
    .assert_eq(&render_transcript(card.transcript()));
}
