//! Printers: the simulators' files and conditions, and the TCP driver against a loopback
//! "printer" that records what it receives and answers the paper query as told.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use busloket_hardware::{
    DocumentPrinter, PrintError, PrintJob, PrinterStatus, Receipt, ReceiptLine, ReceiptPrinter,
    SimDocumentPrinter, SimReceiptPrinter, TcpPrinterTimeouts, TcpReceiptPrinter, encode_escpos,
    render_text,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::receipt::sample_receipt;

fn ticket(number: &str) -> Receipt {
    Receipt {
        lines: vec![
            ReceiptLine::QueueNumber(number.into()),
            ReceiptLine::Text("Été".into()),
        ],
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_simulated_receipt_printer_writes_the_bytes_and_the_text_of_each_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("receipts");
    let sim = Arc::new(SimReceiptPrinter::new("bon", &out));
    let printer: Arc<dyn ReceiptPrinter> = sim.clone();
    assert_eq!(printer.status(), PrinterStatus::Ready);
    assert_eq!(sim.last_text(), None);

    let first = printer.print(&sample_receipt()).await.unwrap();
    let second = printer.print(&ticket("A-043")).await.unwrap();

    assert_eq!(
        first,
        PrintJob {
            id: "receipt-0001".into(),
            printer: "bon".into()
        }
    );
    assert_eq!(second.id, "receipt-0002");
    assert_eq!(
        files_in(&out),
        [
            "receipt-0001.escpos",
            "receipt-0001.txt",
            "receipt-0002.escpos",
            "receipt-0002.txt"
        ]
    );
    assert_eq!(
        std::fs::read(out.join("receipt-0001.escpos")).unwrap(),
        encode_escpos(&sample_receipt(), 48)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("receipt-0001.txt")).unwrap(),
        render_text(&sample_receipt(), 48)
    );
    assert_eq!(sim.last_text(), Some(render_text(&ticket("A-043"), 48)));
    assert_eq!(sim.out_dir(), out);
}

#[tokio::test]
async fn numbering_continues_after_the_jobs_already_in_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("receipt-0007.txt"), "old").unwrap();
    std::fs::write(dir.path().join("receipt-0003.escpos"), "old").unwrap();
    std::fs::write(dir.path().join("document-0042.pdf"), "%PDF-").unwrap();
    std::fs::write(dir.path().join("receipt-notes.txt"), "not a job").unwrap();
    let printer = SimReceiptPrinter::new("bon", dir.path()).with_columns(32);

    let job = printer.print(&ticket("A-001")).await.unwrap();

    assert_eq!(job.id, "receipt-0008");
    assert_eq!(
        std::fs::read(dir.path().join("receipt-0008.escpos")).unwrap(),
        encode_escpos(&ticket("A-001"), 32)
    );
}

#[tokio::test]
async fn out_of_paper_or_offline_prints_nothing_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let printer = SimReceiptPrinter::new("bon", dir.path());

    printer.set_paper(false);
    assert_eq!(printer.status(), PrinterStatus::OutOfPaper);
    let error = printer.print(&ticket("A-001")).await.unwrap_err();
    assert!(matches!(&error, PrintError::OutOfPaper { printer } if printer == "bon"));
    assert_eq!(error.to_string(), "printer \"bon\" is out of paper");

    printer.set_offline(Some("cable unplugged"));
    assert_eq!(
        printer.status(),
        PrinterStatus::Offline {
            reason: "cable unplugged".into()
        }
    );
    assert!(matches!(
        printer.print(&ticket("A-001")).await,
        Err(PrintError::Offline { reason, .. }) if reason == "cable unplugged"
    ));
    assert!(files_in(dir.path()).is_empty());
    assert_eq!(printer.last_text(), None);

    printer.set_offline(None);
    printer.set_paper(true);
    assert_eq!(
        printer.print(&ticket("A-001")).await.unwrap().id,
        "receipt-0001"
    );
}

#[tokio::test]
async fn a_folder_that_cannot_be_created_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let printer = SimReceiptPrinter::new("bon", blocker.join("receipts"));
    let error = printer.print(&ticket("A-001")).await.unwrap_err();
    assert!(
        matches!(&error, PrintError::Io { printer, .. } if printer == "bon"),
        "{error:?}"
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn the_simulated_document_printer_writes_pdfs_and_refuses_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimDocumentPrinter::new("laser", dir.path()));
    let printer: Arc<dyn DocumentPrinter> = sim.clone();
    let pdf = b"%PDF-1.7\n%demo\n".to_vec();

    let job = printer
        .print_pdf("Uittreksel geboorteakte", pdf.clone())
        .await
        .unwrap();
    assert_eq!(
        job,
        PrintJob {
            id: "document-0001".into(),
            printer: "laser".into()
        }
    );
    assert_eq!(
        std::fs::read(dir.path().join("document-0001.pdf")).unwrap(),
        pdf
    );
    assert_eq!(sim.last_title().as_deref(), Some("Uittreksel geboorteakte"));

    let error = printer
        .print_pdf("not a pdf", b"<html>".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(error, PrintError::InvalidDocument { .. }),
        "{error:?}"
    );

    sim.set_paper(false);
    assert!(matches!(
        printer.print_pdf("t", pdf).await,
        Err(PrintError::OutOfPaper { .. })
    ));
    assert_eq!(files_in(dir.path()), ["document-0001.pdf"]);
}

/// What the loopback printer does with the paper query.
#[derive(Clone, Copy)]
enum Answer {
    Status(u8),
    Silence,
}

/// A one-connection "printer": checks the paper query, answers it, then records everything
/// until the client closes.
async fn fake_printer(answer: Answer) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut query = [0u8; 3];
        socket.read_exact(&mut query).await.unwrap();
        assert_eq!(query, [0x10, 0x04, 0x04], "DLE EOT 4 first");
        if let Answer::Status(byte) = answer {
            socket.write_all(&[byte]).await.unwrap();
        }
        let mut received = Vec::new();
        socket.read_to_end(&mut received).await.unwrap();
        received
    });
    (address, handle)
}

fn fast(printer: TcpReceiptPrinter) -> TcpReceiptPrinter {
    printer.with_timeouts(TcpPrinterTimeouts {
        connect: Duration::from_secs(5),
        status_reply: Duration::from_millis(100),
        write: Duration::from_secs(5),
        drain: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn the_tcp_printer_sends_exactly_the_encoded_receipt() {
    let (address, received) = fake_printer(Answer::Status(0x12)).await;
    let printer: Arc<dyn ReceiptPrinter> =
        Arc::new(fast(TcpReceiptPrinter::new("bon", address, 42)));
    assert_eq!(printer.status(), PrinterStatus::Unknown);

    let job = printer.print(&sample_receipt()).await.unwrap();

    assert_eq!(
        job,
        PrintJob {
            id: "receipt-0001".into(),
            printer: "bon".into()
        }
    );
    assert_eq!(
        received.await.unwrap(),
        encode_escpos(&sample_receipt(), 42)
    );
    assert_eq!(printer.status(), PrinterStatus::Ready);
}

#[tokio::test]
async fn the_tcp_printer_sends_nothing_when_the_paper_is_out() {
    let (address, received) = fake_printer(Answer::Status(0x72)).await;
    let printer = fast(TcpReceiptPrinter::new("bon", address, 42));

    let error = printer.print(&sample_receipt()).await.unwrap_err();

    assert!(
        matches!(&error, PrintError::OutOfPaper { printer } if printer == "bon"),
        "{error:?}"
    );
    assert_eq!(received.await.unwrap(), Vec::<u8>::new());
    assert_eq!(printer.status(), PrinterStatus::OutOfPaper);
}

#[tokio::test]
async fn the_tcp_printer_prints_on_when_the_paper_runs_low() {
    let (address, received) = fake_printer(Answer::Status(0x1e)).await;
    let printer = fast(TcpReceiptPrinter::new("bon", address, 42));
    printer.print(&ticket("A-001")).await.unwrap();
    assert_eq!(received.await.unwrap(), encode_escpos(&ticket("A-001"), 42));
    assert_eq!(printer.status(), PrinterStatus::PaperNearEnd);
}

#[tokio::test]
async fn a_printer_that_does_not_answer_the_paper_query_still_gets_the_job() {
    let (address, received) = fake_printer(Answer::Silence).await;
    let printer = fast(TcpReceiptPrinter::new("bon", address, 42));
    printer.print(&ticket("A-001")).await.unwrap();
    assert_eq!(received.await.unwrap(), encode_escpos(&ticket("A-001"), 42));
    assert_eq!(printer.status(), PrinterStatus::Ready);
}

#[tokio::test]
async fn an_unreachable_printer_is_offline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let printer = fast(TcpReceiptPrinter::new("bon", address, 42));

    let error = printer.print(&ticket("A-001")).await.unwrap_err();

    let PrintError::Offline {
        printer: name,
        reason,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(name, "bon");
    assert!(
        reason.starts_with(&format!("cannot connect to {address}")),
        "{reason}"
    );
    assert!(matches!(printer.status(), PrinterStatus::Offline { .. }));
    assert!(matches!(
        printer.query_status().await,
        PrinterStatus::Offline { .. }
    ));
}

#[tokio::test]
async fn the_paper_can_be_asked_without_printing() {
    let (address, received) = fake_printer(Answer::Status(0x72)).await;
    let printer = fast(TcpReceiptPrinter::new("bon", address, 42));
    assert_eq!(printer.query_status().await, PrinterStatus::OutOfPaper);
    assert_eq!(printer.status(), PrinterStatus::OutOfPaper);
    assert_eq!(received.await.unwrap(), Vec::<u8>::new());
}
