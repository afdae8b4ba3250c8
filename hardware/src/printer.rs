//! Printers: the thermal receipt printer ([`ReceiptPrinter`]) and the laser printer for official
//! documents ([`DocumentPrinter`]), their states and errors, and the simulators that write each
//! job to a folder.
//!
//! Printers print what they are given. This module must not decide what goes on a receipt or a
//! document, and the simulators must not print anywhere but into their folder.

mod tcp;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::receipt::{Receipt, encode_escpos, render_text};

pub use tcp::{TcpPrinterTimeouts, TcpReceiptPrinter};

/// Characters per line of an 80 mm thermal printer in font A (576 dots / 12).
pub const DEFAULT_COLUMNS: usize = 48;

/// What a printer last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PrinterStatus {
    Ready,
    /// Still printing, but the roll is almost empty.
    PaperNearEnd,
    OutOfPaper,
    Offline {
        reason: String,
    },
    /// Not known yet (nothing printed or asked since start), or the printer does not say.
    Unknown,
}

/// A job the printer accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintJob {
    pub id: String,
    pub printer: String,
}

/// Why a job was not printed.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("printer {printer:?} is out of paper")]
    OutOfPaper { printer: String },
    #[error("printer {printer:?} is offline: {reason}")]
    Offline { printer: String, reason: String },
    #[error("printer {printer:?} refused the document: {reason}")]
    InvalidDocument { printer: String, reason: String },
    #[error("printer {printer:?} failed while printing")]
    Io {
        printer: String,
        #[source]
        source: std::io::Error,
    },
}

/// The thermal printer for queue tickets and receipts.
pub trait ReceiptPrinter: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// The last known state; never blocks on the device.
    fn status(&self) -> PrinterStatus;
    fn print(&self, receipt: &Receipt) -> BoxFuture<'_, Result<PrintJob, PrintError>>;
}

/// The A4 printer for official documents, which arrive as PDF.
pub trait DocumentPrinter: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// The last known state; never blocks on the device.
    fn status(&self) -> PrinterStatus;
    fn print_pdf(&self, title: &str, pdf: Vec<u8>) -> BoxFuture<'_, Result<PrintJob, PrintError>>;
}

/// A simulated receipt printer: each job becomes `receipt-NNNN.escpos` (the exact bytes a real
/// printer would get) and `receipt-NNNN.txt` (the text render) in its folder, numbered on from
/// the highest number already there.
pub struct SimReceiptPrinter {
    name: String,
    columns: usize,
    spool: Arc<Spool>,
    condition: SimCondition,
    // A std mutex: held only to swap the text, never across an `.await`.
    last_text: Mutex<Option<String>>,
}

impl SimReceiptPrinter {
    /// A printer writing into `out_dir` (created at the first job), [`DEFAULT_COLUMNS`] wide.
    pub fn new(name: impl Into<String>, out_dir: impl Into<PathBuf>) -> SimReceiptPrinter {
        SimReceiptPrinter {
            name: name.into(),
            columns: DEFAULT_COLUMNS,
            spool: Arc::new(Spool::new(out_dir.into(), "receipt")),
            condition: SimCondition::default(),
            last_text: Mutex::new(None),
        }
    }

    /// Sets the paper width in characters.
    pub fn with_columns(mut self, columns: usize) -> SimReceiptPrinter {
        self.columns = columns;
        self
    }

    /// The folder the jobs are written to.
    pub fn out_dir(&self) -> &Path {
        &self.spool.dir
    }

    /// The text render of the last job printed: "what came out of the printer".
    pub fn last_text(&self) -> Option<String> {
        lock(&self.last_text).clone()
    }

    /// Loads paper (`true`) or runs out of it (`false`: jobs fail with `OutOfPaper`).
    pub fn set_paper(&self, loaded: bool) {
        self.condition.set_paper(loaded);
    }

    /// Takes the printer offline with a reason (`Some`) or back online (`None`).
    pub fn set_offline(&self, reason: Option<&str>) {
        self.condition.set_offline(reason);
    }
}

impl ReceiptPrinter for SimReceiptPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn status(&self) -> PrinterStatus {
        self.condition.status()
    }

    fn print(&self, receipt: &Receipt) -> BoxFuture<'_, Result<PrintJob, PrintError>> {
        let bytes = encode_escpos(receipt, self.columns);
        let text = render_text(receipt, self.columns);
        Box::pin(async move {
            self.condition.check(&self.name)?;
            let files = vec![("escpos", bytes), ("txt", text.clone().into_bytes())];
            let id = self.spool.write_job(&self.name, files).await?;
            *lock(&self.last_text) = Some(text);
            Ok(PrintJob {
                id,
                printer: self.name.clone(),
            })
        })
    }
}

/// A simulated document printer: each job becomes `document-NNNN.pdf` in its folder.
pub struct SimDocumentPrinter {
    name: String,
    spool: Arc<Spool>,
    condition: SimCondition,
    // A std mutex: held only to swap the title, never across an `.await`.
    last_title: Mutex<Option<String>>,
}

impl SimDocumentPrinter {
    /// A printer writing into `out_dir` (created at the first job).
    pub fn new(name: impl Into<String>, out_dir: impl Into<PathBuf>) -> SimDocumentPrinter {
        SimDocumentPrinter {
            name: name.into(),
            spool: Arc::new(Spool::new(out_dir.into(), "document")),
            condition: SimCondition::default(),
            last_title: Mutex::new(None),
        }
    }

    /// The folder the jobs are written to.
    pub fn out_dir(&self) -> &Path {
        &self.spool.dir
    }

    /// The title of the last document printed.
    pub fn last_title(&self) -> Option<String> {
        lock(&self.last_title).clone()
    }

    /// Loads paper (`true`) or runs out of it (`false`: jobs fail with `OutOfPaper`).
    pub fn set_paper(&self, loaded: bool) {
        self.condition.set_paper(loaded);
    }

    /// Takes the printer offline with a reason (`Some`) or back online (`None`).
    pub fn set_offline(&self, reason: Option<&str>) {
        self.condition.set_offline(reason);
    }
}

impl DocumentPrinter for SimDocumentPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn status(&self) -> PrinterStatus {
        self.condition.status()
    }

    fn print_pdf(&self, title: &str, pdf: Vec<u8>) -> BoxFuture<'_, Result<PrintJob, PrintError>> {
        let title = title.to_owned();
        Box::pin(async move {
            if !pdf.starts_with(b"%PDF-") {
                return Err(PrintError::InvalidDocument {
                    printer: self.name.clone(),
                    reason: "the data is not a PDF file (no %PDF- header)".to_owned(),
                });
            }
            self.condition.check(&self.name)?;
            let id = self.spool.write_job(&self.name, vec![("pdf", pdf)]).await?;
            *lock(&self.last_title) = Some(title);
            Ok(PrintJob {
                id,
                printer: self.name.clone(),
            })
        })
    }
}

/// Paper and connection of a simulated printer, as the demo page or a test sets them.
#[derive(Default)]
struct SimCondition {
    out_of_paper: AtomicBool,
    // A std mutex: held only to read or swap the reason, never across an `.await`.
    offline: Mutex<Option<String>>,
}

impl SimCondition {
    fn set_paper(&self, loaded: bool) {
        self.out_of_paper.store(!loaded, Ordering::SeqCst);
    }

    fn set_offline(&self, reason: Option<&str>) {
        *lock(&self.offline) = reason.map(str::to_owned);
    }

    fn status(&self) -> PrinterStatus {
        if let Some(reason) = lock(&self.offline).clone() {
            return PrinterStatus::Offline { reason };
        }
        if self.out_of_paper.load(Ordering::SeqCst) {
            return PrinterStatus::OutOfPaper;
        }
        PrinterStatus::Ready
    }

    fn check(&self, printer: &str) -> Result<(), PrintError> {
        match self.status() {
            PrinterStatus::Offline { reason } => Err(PrintError::Offline {
                printer: printer.to_owned(),
                reason,
            }),
            PrinterStatus::OutOfPaper => Err(PrintError::OutOfPaper {
                printer: printer.to_owned(),
            }),
            PrinterStatus::Ready | PrinterStatus::PaperNearEnd | PrinterStatus::Unknown => Ok(()),
        }
    }
}

/// A folder of numbered jobs: `<prefix>-NNNN.<extension>`.
struct Spool {
    dir: PathBuf,
    prefix: &'static str,
    /// The next job number, found by looking at the folder before the first job. A std mutex,
    /// locked only on the blocking thread that writes the job.
    next: Mutex<Option<u32>>,
}

impl Spool {
    fn new(dir: PathBuf, prefix: &'static str) -> Spool {
        Spool {
            dir,
            prefix,
            next: Mutex::new(None),
        }
    }

    /// Writes the files of one job on a blocking thread; returns the job id (`receipt-0007`).
    async fn write_job(
        self: &Arc<Self>,
        printer: &str,
        files: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<String, PrintError> {
        let spool = Arc::clone(self);
        let io_error = |source| PrintError::Io {
            printer: printer.to_owned(),
            source,
        };
        tokio::task::spawn_blocking(move || spool.write_job_blocking(&files))
            .await
            .map_err(|join_error| io_error(std::io::Error::other(join_error)))?
            .map_err(io_error)
    }

    fn write_job_blocking(&self, files: &[(&'static str, Vec<u8>)]) -> std::io::Result<String> {
        let mut next = lock(&self.next);
        std::fs::create_dir_all(&self.dir)?;
        let number = match *next {
            Some(number) => number,
            None => self.highest_number()? + 1,
        };
        let id = format!("{}-{number:04}", self.prefix);
        for (extension, bytes) in files {
            std::fs::write(self.dir.join(format!("{id}.{extension}")), bytes)?;
        }
        *next = Some(number + 1);
        Ok(id)
    }

    /// The highest job number among the folder's files of this spool, 0 when there is none.
    fn highest_number(&self) -> std::io::Result<u32> {
        let mut highest = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let number = name
                .to_str()
                .and_then(|name| name.strip_prefix(self.prefix)?.strip_prefix('-'))
                .and_then(|rest| rest.split('.').next())
                .and_then(|digits| digits.parse::<u32>().ok());
            highest = highest.max(number.unwrap_or(0));
        }
        Ok(highest)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
