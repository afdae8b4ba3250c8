//! Receipts: the ESC/POS bytes (as annotated hex) and the text render of a sample ticket, and
//! the layout rules behind both (wrapping, fields, code page, QR sizes, hostile text).

use busloket_hardware::{Receipt, ReceiptLine, encode_escpos, render_text};
use expect_test::expect;

use crate::escpos_hex::{annotate, texts};

fn field(label: &str, value: &str) -> ReceiptLine {
    ReceiptLine::Field {
        label: label.into(),
        value: value.into(),
    }
}

pub fn sample_receipt() -> Receipt {
    Receipt {
        lines: vec![
            ReceiptLine::Title("Stad Kortrijk — Dienstenbus".into()),
            ReceiptLine::Text("DEMO".into()),
            ReceiptLine::Blank,
            ReceiptLine::QueueNumber("A-042".into()),
            ReceiptLine::Blank,
            ReceiptLine::Text(
                "Uw aanvraag is geregistreerd. Votre demande est enregistrée.".into(),
            ),
            ReceiptLine::Separator,
            field("Aanvraag", "Uittreksel geboorteakte"),
            field("Voor", "Hélène Verschueren"),
            field("Naam", "Paweł Łukasz Wiśniewski"),
            field("Halte", "Kortrijk – Markt"),
            field("Datum", "23.11.2026 10:42"),
            field("Kosten", "€ 5,00"),
            field(
                "Rijksregisternummer",
                "78.03.12-037.01 (Günther, Chloë, François)",
            ),
            ReceiptLine::Separator,
            ReceiptLine::Qr("BE1:DEMO-0042".into()),
            ReceiptLine::Text("Bewaar dit ticket.\nConservez ce ticket.".into()),
        ],
    }
}

#[test]
fn the_sample_receipt_as_escpos_bytes() {
    let bytes = encode_escpos(&sample_receipt(), 32);
    expect![[r#"
        1b 40  ESC @ initialise
        1b 74 10  ESC t 16 code page Windows-1252
        1b 61 01  ESC a 1 justify centre
        1b 45 01  ESC E 1 bold on
        1d 21 11  GS ! size 2x2
        53 74 61 64 20 4b 6f 72 74 72 69 6a 6b 20 97  text "Stad Kortrijk —"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        44 69 65 6e 73 74 65 6e 62 75 73  text "Dienstenbus"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        1d 21 00  GS ! size 1x1
        1b 45 00  ESC E 0 bold off
        1b 61 00  ESC a 0 justify left
        44 45 4d 4f  text "DEMO"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        1b 64 01  ESC d 1 print and feed 1 line(s)
        1b 61 01  ESC a 1 justify centre
        1b 45 01  ESC E 1 bold on
        1d 21 33  GS ! size 4x4
        41 2d 30 34 32  text "A-042"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        1d 21 00  GS ! size 1x1
        1b 45 00  ESC E 0 bold off
        1b 61 00  ESC a 0 justify left
        1b 64 01  ESC d 1 print and feed 1 line(s)
        55 77 20 61 61 6e 76 72 61 61 67 20 69 73 20 67 65 72 65 67 69 73 74 72 65 65 72 64 2e  text "Uw aanvraag is geregistreerd."
        1b 64 01  ESC d 1 print and feed 1 line(s)
        56 6f 74 72 65 20 64 65 6d 61 6e 64 65 20 65 73 74 20 65 6e 72 65 67 69 73 74 72 e9 65 2e  text "Votre demande est enregistrée."
        1b 64 01  ESC d 1 print and feed 1 line(s)
        2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d  text "--------------------------------"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        41 61 6e 76 72 61 61 67  text "Aanvraag"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        20 20 55 69 74 74 72 65 6b 73 65 6c 20 67 65 62 6f 6f 72 74 65 61 6b 74 65  text "  Uittreksel geboorteakte"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        56 6f 6f 72 20 20 20 20 20 20 20 20 20 20 48 e9 6c e8 6e 65 20 56 65 72 73 63 68 75 65 72 65 6e  text "Voor          Hélène Verschueren"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        4e 61 61 6d 20 20 20 20 20 50 61 77 65 6c 20 4c 75 6b 61 73 7a 20 57 69 73 6e 69 65 77 73 6b 69  text "Naam     Pawel Lukasz Wisniewski"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        48 61 6c 74 65 20 20 20 20 20 20 20 20 20 20 20 4b 6f 72 74 72 69 6a 6b 20 96 20 4d 61 72 6b 74  text "Halte           Kortrijk – Markt"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        44 61 74 75 6d 20 20 20 20 20 20 20 20 20 20 20 32 33 2e 31 31 2e 32 30 32 36 20 31 30 3a 34 32  text "Datum           23.11.2026 10:42"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        4b 6f 73 74 65 6e 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 80 20 35 2c 30 30  text "Kosten                    € 5,00"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        52 69 6a 6b 73 72 65 67 69 73 74 65 72 6e 75 6d 6d 65 72  text "Rijksregisternummer"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        20 20 37 38 2e 30 33 2e 31 32 2d 30 33 37 2e 30 31 20 28 47 fc 6e 74 68 65 72 2c  text "  78.03.12-037.01 (Günther,"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        20 20 43 68 6c 6f eb 2c 20 46 72 61 6e e7 6f 69 73 29  text "  Chloë, François)"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d  text "--------------------------------"
        1b 64 01  ESC d 1 print and feed 1 line(s)
        1b 61 01  ESC a 1 justify centre
        1d 28 6b 04 00 31 41 32 00  GS ( k QR model 2
        1d 28 6b 03 00 31 43 06  GS ( k QR module size 6 dots
        1d 28 6b 03 00 31 45 31  GS ( k QR error correction M
        1d 28 6b 10 00 31 50 30 42 45 31 3a 44 45 4d 4f 2d 30 30 34 32  GS ( k QR store "BE1:DEMO-0042"
        1d 28 6b 03 00 31 51 30  GS ( k QR print
        1b 61 00  ESC a 0 justify left
        42 65 77 61 61 72 20 64 69 74 20 74 69 63 6b 65 74 2e  text "Bewaar dit ticket."
        1b 64 01  ESC d 1 print and feed 1 line(s)
        43 6f 6e 73 65 72 76 65 7a 20 63 65 20 74 69 63 6b 65 74 2e  text "Conservez ce ticket."
        1b 64 01  ESC d 1 print and feed 1 line(s)
        1b 64 02  ESC d 2 print and feed 2 line(s)
        1d 56 41 00  GS V A 0 feed to the cutter and cut
    "#]]
    .assert_eq(&annotate(&bytes));
}

#[test]
fn the_sample_receipt_as_text() {
    expect![[r#"
                Stad Kortrijk —
                  Dienstenbus
        DEMO

                     A-042

        Uw aanvraag is geregistreerd.
        Votre demande est enregistrée.
        --------------------------------
        Aanvraag
          Uittreksel geboorteakte
        Voor          Hélène Verschueren
        Naam     Pawel Lukasz Wisniewski
        Halte           Kortrijk – Markt
        Datum           23.11.2026 10:42
        Kosten                    € 5,00
        Rijksregisternummer
          78.03.12-037.01 (Günther,
          Chloë, François)
        --------------------------------
              [QR: BE1:DEMO-0042]
        Bewaar dit ticket.
        Conservez ce ticket.


        8<------------------------------
    "#]]
    .assert_eq(&render_text(&sample_receipt(), 32));
}

#[test]
fn the_escpos_text_is_exactly_the_text_render() {
    let receipt = sample_receipt();
    for columns in [32, 42, 48] {
        let printed: Vec<String> = texts(&encode_escpos(&receipt, columns));
        let rendered: Vec<String> = render_text(&receipt, columns)
            .lines()
            .map(|line| line.trim().to_owned())
            .filter(|line| {
                !line.is_empty() && !line.starts_with("[QR: ") && !line.starts_with("8<")
            })
            .collect();
        let printed: Vec<String> = printed.iter().map(|text| text.trim().to_owned()).collect();
        assert_eq!(printed, rendered, "{columns} columns");
    }
}

#[test]
fn control_characters_cannot_smuggle_printer_commands_in() {
    let hostile = Receipt {
        lines: vec![
            ReceiptLine::Text("Jan\u{1b}@\u{1d}V\u{41}\u{0}Peeters\u{7f}\u{85}".into()),
            field("Naam\u{1b}", "Dubois\r"),
        ],
    };
    let bytes = encode_escpos(&hostile, 32);
    let annotated = annotate(&bytes);
    // One initialise and one cut: the ones the encoder put there.
    assert_eq!(annotated.matches("ESC @").count(), 1, "{annotated}");
    assert_eq!(annotated.matches("GS V").count(), 1, "{annotated}");
    assert!(!annotated.contains("unknown"), "{annotated}");
    assert_eq!(
        texts(&bytes),
        ["Jan@VAPeeters", "Naam                      Dubois"]
    );
}

#[test]
fn letters_outside_the_code_page_are_transliterated_and_the_rest_kept() {
    let receipt = Receipt {
        lines: vec![ReceiptLine::Text(
            "Paweł Łukasz Wiśniewski, Ștefan Öztürk-Gül, Zoë Dubœuf, Ærø € 5 – ok, 東京".into(),
        )],
    };
    let text = render_text(&receipt, 80);
    assert_eq!(
        text.lines().next().unwrap(),
        "Pawel Lukasz Wisniewski, Stefan Öztürk-Gül, Zoë Dubœuf, Ærø € 5 – ok, ??"
    );
    let bytes = encode_escpos(&receipt, 80);
    assert_eq!(texts(&bytes)[0], text.lines().next().unwrap());
    // The euro sign and œ are single code page 1252 bytes, not UTF-8.
    assert!(bytes.windows(2).any(|pair| pair == [0x80, b' ']));
    assert!(bytes.contains(&0x9c));
    assert!(
        !bytes.windows(2).any(|pair| pair == [0xc3, 0xab]),
        "UTF-8 ë leaked through"
    );
}

#[test]
fn long_words_are_cut_and_long_fields_go_on_two_lines() {
    let receipt = Receipt {
        lines: vec![
            ReceiptLine::Text("Vandenabeele-VandeWalledeGhellinckd'Elseghem woont hier".into()),
            field(
                "Naam",
                "Marie-Christine Anne-Sophie Vandenabeele-Van de Walle",
            ),
            ReceiptLine::Title("Attest van gezinssamenstelling".into()),
            ReceiptLine::QueueNumber("B-1234567".into()),
        ],
    };
    expect![[r#"
        Vandenabeele-VandeWa
        lledeGhellinckd'Else
        ghem woont hier
        Naam
          Marie-Christine
          Anne-Sophie
          Vandenabeele-Van
          de Walle
             Attest van
             gezinssame
             nstelling
               B-123
                4567


        8<------------------
    "#]]
    .assert_eq(&render_text(&receipt, 20));
}

#[test]
fn qr_codes_get_smaller_modules_as_they_grow_and_impossible_ones_are_left_out() {
    let module_size = |data: String, columns: usize| {
        let receipt = Receipt {
            lines: vec![ReceiptLine::Qr(data)],
        };
        annotate(&encode_escpos(&receipt, columns))
            .lines()
            .find_map(|line| line.split("QR module size ").nth(1).map(str::to_owned))
    };
    assert_eq!(module_size("x".repeat(20), 48).as_deref(), Some("6 dots"));
    // A 337-character signed seal: version 13 (69 modules) → 8 dots would fit 576; capped at 6.
    assert_eq!(module_size("x".repeat(337), 48).as_deref(), Some("6 dots"));
    assert_eq!(module_size("x".repeat(337), 32).as_deref(), Some("5 dots"));
    assert_eq!(module_size("x".repeat(2000), 32).as_deref(), Some("2 dots"));
    assert_eq!(module_size("x".repeat(2332), 48), None);
    assert_eq!(module_size(String::new(), 48), None);
}

#[test]
fn narrow_paper_is_laid_out_at_the_minimum_width() {
    let receipt = Receipt {
        lines: vec![ReceiptLine::Separator],
    };
    assert_eq!(render_text(&receipt, 3), render_text(&receipt, 16));
    assert!(render_text(&receipt, 0).starts_with(&"-".repeat(16)));
}

#[test]
fn receipts_serialise_as_plain_data() {
    let receipt = Receipt {
        lines: vec![
            ReceiptLine::Title("T".into()),
            field("a", "b"),
            ReceiptLine::Separator,
        ],
    };
    let json = serde_json::to_value(&receipt).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"lines": [{"title": "T"}, {"field": {"label": "a", "value": "b"}}, "separator"]})
    );
    assert_eq!(serde_json::from_value::<Receipt>(json).unwrap(), receipt);
}
