//! The request workflow of the node: submit a request, print its ticket, reprint, cancel; and the
//! access log entry for every read of citizen data. The kiosk, the staff console and the API all
//! come through here, so the rules hold whichever door a request takes.
//!
//! A request is durable (flushed to the store) before anything tells the person "saved"; the
//! ticket is printed after that, and a printer failure never loses the request.

use std::path::Path;

use anyhow::Context;
use automerge::ActorId;
use busloket_hardware::eid::Pin;
use busloket_hardware::{CardError, HolderRequest, PrintError, Receipt, ReceiptLine};
use busloket_sync::access_log::AccessEntry;
use busloket_sync::catalogue::DocumentType;
use busloket_sync::eligibility::{Decision, EligibilityQuery, decide};
use busloket_sync::national_number::NationalNumber;
use busloket_sync::protocol;
use busloket_sync::record::{
    CardEvidence, Delivery, EligibilityOutcome, EventId, EventKind, HolderEvidence, NewEvent,
    NewRequest, Origin, Person, RequestRecord, RequestView, holder_statement,
};
use busloket_sync::store::{RequestSummary, StoreError};
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, DocumentCode, HolderAlgorithm, Language, Postcode,
    Relation, RequestId,
};
use chrono::{DateTime, Utc};
use rand::Rng;

use crate::error::ApiError;
use crate::events::NodeEvent;
use crate::state::AppState;

/// Everything needed to submit a request, already parsed.
#[derive(Debug, Clone)]
pub struct SubmitInput {
    pub document: DocumentCode,
    pub requester: Person,
    pub subject: Person,
    pub relation: Relation,
    pub subject_is_minor: bool,
    pub authentication: AuthStrength,
    pub channel: Channel,
    pub language: Language,
    pub delivery: Delivery,
    pub purpose: Option<String>,
    /// What reading the requester's card proved, when it was read.
    pub evidence: Option<CardEvidence>,
    /// The requester's postcode: from their card's address file when it was read.
    pub requester_postcode: Option<Postcode>,
    /// The kiosk station or the staff desk.
    pub station: String,
    /// Who submits: `kiosk:<station>` or `staff:<username>`.
    pub by: String,
}

/// The answer to a submission: the request is stored whatever happened to the ticket.
#[derive(Debug)]
pub struct Submitted {
    pub id: RequestId,
    pub queue_number: u32,
    pub decision: Decision,
    pub ticket: Result<(), PrintError>,
    /// From the start of `submit` until the request was flushed to disk.
    pub durable_after: std::time::Duration,
    /// How long printing the ticket (and recording it) took.
    pub ticket_took: std::time::Duration,
}

/// The catalogue entry for a code, or a 422 naming the code.
pub fn document_type<'a>(
    state: &'a AppState,
    code: &DocumentCode,
) -> Result<&'a DocumentType, ApiError> {
    state.catalogue.get(code).ok_or_else(|| {
        ApiError::unprocessable(
            "unknown-document",
            format!("no document type `{code}` in the catalogue"),
        )
    })
}

/// Checks an e-mail address just enough to catch typing slips; the mail server decides the rest.
pub fn plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The postcode of a card's address: all of the address a request keeps. `None` when the card's
/// postal code is not a Belgian postcode (it always is on a Belgian eID).
pub fn card_postcode(identity: &busloket_hardware::CardIdentity) -> Option<Postcode> {
    identity.address.zip.trim().parse().ok()
}

/// What a verified card read proved, as a request record carries it (without a holder
/// signature: that comes with the PIN, per request).
pub fn record_evidence(evidence: &busloket_hardware::CardEvidence) -> CardEvidence {
    CardEvidence {
        identity_file_sha256: evidence.identity_file_sha256.clone(),
        applet_version: evidence.applet_version,
        register_signature_verified: evidence.register_signature_verified,
        chip_verified: evidence.chip_verified,
        holder: None,
    }
}

/// A request checked and laid out but not stored yet: what the holder's PIN signs.
#[derive(Debug)]
pub struct Draft {
    pub request: NewRequest,
    subject_is_minor: bool,
    by: String,
    started: std::time::Instant,
}

/// Validates, decides eligibility, stores the request durably, then prints the ticket.
pub async fn submit(
    state: &AppState,
    input: SubmitInput,
    now: DateTime<Utc>,
) -> Result<Submitted, ApiError> {
    let draft = draft(state, input, now)?;
    store(state, draft).await
}

/// Checks the input and lays the request out with a fresh id; the queue number comes when it is
/// stored. Refuses a request the rules do not allow.
pub fn draft(state: &AppState, input: SubmitInput, now: DateTime<Utc>) -> Result<Draft, ApiError> {
    let started = std::time::Instant::now();
    let document = document_type(state, &input.document)?;
    let purpose = input
        .purpose
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    if document.purpose_required && purpose.is_none() {
        return Err(ApiError::unprocessable(
            "purpose-required",
            "this document needs the purpose it is requested for",
        ));
    }
    if purpose.as_ref().is_some_and(|p| p.chars().count() > 200) {
        return Err(ApiError::unprocessable(
            "purpose-too-long",
            "the purpose can be at most 200 characters",
        ));
    }
    if input.delivery.method == DeliveryMethod::Email
        && !input.delivery.email.as_deref().is_some_and(plausible_email)
    {
        return Err(ApiError::unprocessable(
            "bad-email",
            "this e-mail address does not look right",
        ));
    }
    if input.requester.name.trim().is_empty() || input.subject.name.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "missing-name",
            "the requester's and the subject's names are needed",
        ));
    }
    if input.relation == Relation::Myself
        && input.requester.national_number != input.subject.national_number
    {
        return Err(ApiError::unprocessable(
            "relation-mismatch",
            "for yourself, requester and subject are the same person",
        ));
    }
    let document_language = if document.languages.contains(&input.language) {
        input.language
    } else {
        document
            .languages
            .first()
            .copied()
            .unwrap_or(input.language)
    };
    // Where the bus is now: the stop, how it is known, the fix and the clock's skew.
    let here = state.position.here(now);
    let draft = Draft {
        request: NewRequest {
            id: RequestId::new(
                now.timestamp_millis().max(0) as u64,
                rand::thread_rng().r#gen(),
            ),
            document: input.document,
            subject: input.subject,
            requester: input.requester,
            relation: input.relation,
            channel: input.channel,
            language: input.language,
            document_language,
            delivery: input.delivery,
            authentication: input.authentication,
            purpose,
            origin: Origin {
                device: state.config.device_id.clone(),
                station: input.station,
                stop: here.stop,
                at: now,
                whereabouts: here.whereabouts,
            },
            queue_number: 0,
            evidence: input.evidence,
            requester_postcode: input.requester_postcode,
        },
        subject_is_minor: input.subject_is_minor,
        by: input.by,
        started,
    };
    if let Decision::NotAllowed(reason) = decision(state, &draft)? {
        return Err(ApiError::unprocessable(
            "not-allowed",
            format!("this request is not allowed: {}", reason.code()),
        ));
    }
    Ok(draft)
}

fn decision(state: &AppState, draft: &Draft) -> Result<Decision, ApiError> {
    Ok(decide(&EligibilityQuery {
        document: document_type(state, &draft.request.document)?,
        relation: draft.request.relation,
        authentication: draft.request.authentication,
        subject_is_minor: draft.subject_is_minor,
    }))
}

/// The citizen confirms the draft with their PIN: the card in `reader` signs the draft's
/// [`holder_statement`], and the draft becomes `card-pin` strength carrying the signature.
/// Nothing is stored; a wrong PIN leaves the draft as it was.
pub async fn sign_with_pin(
    state: &AppState,
    draft: &mut Draft,
    reader: &str,
    pin: Pin,
) -> Result<(), CardError> {
    let request = HolderRequest {
        pin,
        statement: holder_statement(&draft.request),
        expected_national_number: Some(draft.request.requester.national_number.digits().into()),
    };
    let signature = state.readers.authenticate_holder(reader, request).await?;
    if !signature.demo {
        // A real card's signature is evidence only next to the verified read of the same card.
        let Some(evidence) = draft.request.evidence.as_mut() else {
            return Err(CardError::NotTrusted {
                reader: reader.to_owned(),
                reason: "the card signed, but its identity was not read from it".into(),
            });
        };
        evidence.holder = Some(HolderEvidence {
            algorithm: match signature.algorithm {
                busloket_hardware::HolderAlgorithm::RsaPkcs1Sha256 => {
                    HolderAlgorithm::RsaPkcs1Sha256
                }
                busloket_hardware::HolderAlgorithm::EcdsaP384Sha384 => {
                    HolderAlgorithm::EcdsaP384Sha384
                }
            },
            signature: signature.signature,
            certificate: signature.certificate_der,
        });
    }
    draft.request.authentication = AuthStrength::CardPin;
    Ok(())
}

/// Decides eligibility, stores the draft durably with the day's next queue number, then prints
/// the ticket.
pub async fn store(state: &AppState, draft: Draft) -> Result<Submitted, ApiError> {
    let decision = decision(state, &draft)?;
    if let Decision::NotAllowed(reason) = &decision {
        return Err(ApiError::unprocessable(
            "not-allowed",
            format!("this request is not allowed: {}", reason.code()),
        ));
    }
    let Draft {
        request: mut new,
        by,
        started,
        ..
    } = draft;
    let now = new.origin.at;
    let id = new.id;
    let document = new.document.clone();
    let store = state.store.clone();
    let actor = state.actor.clone();
    let device = state.config.device_id.clone();
    let queue_number = tokio::task::spawn_blocking(move || -> anyhow::Result<u32> {
        new.queue_number = store.next_queue_number(now.date_naive())?;
        let mut record = RequestRecord::create(&new, actor.clone(), new_event_id(now), &by)?;
        let (outcome, reason) = match &decision {
            Decision::Automatic => (EligibilityOutcome::Automatic, None),
            Decision::NeedsClerk(reason) => (
                EligibilityOutcome::NeedsClerk,
                Some(reason.code().to_owned()),
            ),
            Decision::NotAllowed(reason) => (
                EligibilityOutcome::NotAllowed,
                Some(reason.code().to_owned()),
            ),
        };
        record.append(
            &actor,
            NewEvent {
                id: new_event_id(now),
                at: now,
                by,
                device,
                kind: EventKind::EligibilityDecided { outcome, reason },
            },
        )?;
        store
            .insert_new(&mut record)
            .context("cannot store the new request")?;
        Ok(new.queue_number)
    })
    .await?
    .map_err(ApiError::internal)?;
    tracing::info!(request = %id, queue_number, %document, "request submitted");
    let durable_after = started.elapsed();
    state.events.send(NodeEvent::Request);
    state.sync.local_change();

    let ticket = print_ticket(state, id, now).await;
    let ticket_took = started.elapsed() - durable_after;
    Ok(Submitted {
        id,
        queue_number,
        decision,
        ticket,
        durable_after,
        ticket_took,
    })
}

/// Prints (or reprints) a request's ticket and records it; the request stays whatever happens.
pub async fn print_ticket(
    state: &AppState,
    id: RequestId,
    now: DateTime<Utc>,
) -> Result<(), PrintError> {
    let view = match load_view(state, id).await {
        Ok(Some(view)) => view,
        Ok(None) | Err(_) => {
            tracing::error!(request = %id, "cannot load a request to print its ticket");
            return Err(PrintError::InvalidDocument {
                printer: state.receipt_printer.name().to_owned(),
                reason: format!("request {id} could not be loaded"),
            });
        }
    };
    let receipt = ticket(state, &view);
    let printer = state.receipt_printer.name().to_owned();
    let result = state.receipt_printer.print(&receipt).await;
    state.events.send(NodeEvent::Device);
    match &result {
        Ok(_) => {
            let outcome = record_event(
                state,
                id,
                "node",
                EventKind::ReceiptPrinted { printer },
                now,
            )
            .await;
            if let Err(err) = outcome {
                tracing::error!(request = %id, "ticket printed but not recorded: {}", err.message);
            }
        }
        Err(err) => tracing::warn!(request = %id, "ticket not printed: {err}"),
    }
    result.map(|_| ())
}

/// Appends one event to a stored request, durably.
pub async fn record_event(
    state: &AppState,
    id: RequestId,
    by: &str,
    kind: EventKind,
    now: DateTime<Utc>,
) -> Result<RequestSummary, ApiError> {
    let store = state.store.clone();
    let actor = state.actor.clone();
    let event = NewEvent {
        id: new_event_id(now),
        at: now,
        by: by.to_owned(),
        device: state.config.device_id.clone(),
        kind,
    };
    let result = tokio::task::spawn_blocking(move || {
        store.update(id, |record| record.append(&actor, event))
    })
    .await?;
    state.events.send(NodeEvent::Request);
    state.sync.local_change();
    match result {
        Ok((_, summary)) => Ok(summary),
        Err(StoreError::NotFound { .. }) => Err(ApiError::not_found(
            "unknown-request",
            format!("no request {id}"),
        )),
        Err(StoreError::Refused { source, .. }) => {
            Err(ApiError::conflict("refused", source.to_string()))
        }
        Err(err) => Err(ApiError::internal(err)),
    }
}

/// Cancels a request with a reason; refused once the document was handed over.
pub async fn cancel(
    state: &AppState,
    id: RequestId,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<RequestSummary, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::unprocessable(
            "reason-required",
            "say why the request is cancelled (at most 500 characters)",
        ));
    }
    let Some(view) = load_view(state, id).await? else {
        return Err(ApiError::not_found(
            "unknown-request",
            format!("no request {id}"),
        ));
    };
    if view.status.is_finished() {
        return Err(ApiError::conflict(
            "already-finished",
            format!("the request is already {}", view.status.code()),
        ));
    }
    record_event(
        state,
        id,
        by,
        EventKind::Cancelled {
            reason: reason.to_owned(),
        },
        now,
    )
    .await
}

/// The whole record as the pages and the API show it.
pub async fn load_view(state: &AppState, id: RequestId) -> Result<Option<RequestView>, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<RequestView>> {
        match store.load(id)? {
            Some(record) => Ok(Some(record.view()?)),
            None => Ok(None),
        }
    })
    .await?
    .map_err(ApiError::internal)
}

/// Writes an access-log entry for a read of citizen data. A failure to log refuses the read.
pub async fn log_access(
    state: &AppState,
    who: &str,
    subject: NationalNumber,
    data: &[&str],
    purpose: &str,
    request: Option<RequestId>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let entry = AccessEntry {
        at: now,
        who: who.to_owned(),
        subject,
        data: data.iter().map(|d| (*d).to_owned()).collect(),
        purpose: purpose.to_owned(),
        request,
        device: state.config.device_id.clone(),
    };
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.access_log().append(&entry))
        .await?
        .map(|_| ())
        .map_err(ApiError::internal)
}

/// The queue ticket: number, document, what happens next, and a reference with its QR code.
/// No name and no national number: a ticket can be left behind at the stop.
pub fn ticket(state: &AppState, view: &RequestView) -> Receipt {
    let fields = &view.fields;
    let tr = state.translations.get(fields.language);
    let document_name = state
        .catalogue
        .get(&fields.document)
        .map(|document| document.names.get(fields.language).to_owned())
        .unwrap_or_else(|| fields.document.to_string());
    let next = if view.events.iter().any(|event| {
        matches!(
            &event.kind,
            EventKind::EligibilityDecided {
                outcome: EligibilityOutcome::Automatic,
                ..
            }
        )
    }) {
        tr.t("ticket-next-automatic")
    } else {
        tr.t("ticket-next-clerk")
    };
    let mut lines = vec![
        ReceiptLine::Title(tr.t("ticket-title")),
        ReceiptLine::Text(tr.t("ticket-your-number")),
        ReceiptLine::QueueNumber(fields.queue_number.to_string()),
        ReceiptLine::Separator,
        ReceiptLine::Field {
            label: tr.t("ticket-document"),
            value: document_name,
        },
        ReceiptLine::Text(next),
        ReceiptLine::Field {
            label: tr.t("ticket-date"),
            value: crate::layout::local_time(fields.origin.at, "%d.%m.%Y %H:%M"),
        },
    ];
    if let Some(stop) = &fields.origin.stop {
        // The stop's name when the schedule knows it: the citizen reads the ticket, not the id.
        let schedule = state.position.schedule();
        lines.push(ReceiptLine::Field {
            label: tr.t("ticket-stop"),
            value: schedule
                .get(stop)
                .map_or_else(|| stop.to_string(), |known| known.name.clone()),
        });
    }
    lines.push(ReceiptLine::Field {
        label: tr.t("ticket-reference"),
        value: short_reference(fields.id),
    });
    lines.push(ReceiptLine::Qr(format!("busloket:request:{}", fields.id)));
    lines.push(ReceiptLine::Text(tr.t("ticket-keep")));
    Receipt { lines }
}

/// The last 8 hex digits of the id: enough for a clerk to find the request among a day's.
pub fn short_reference(id: RequestId) -> String {
    let text = id.as_uuid().simple().to_string();
    text[text.len() - 8..].to_uppercase()
}

pub fn new_event_id(now: DateTime<Utc>) -> EventId {
    EventId::new(
        now.timestamp_millis().max(0) as u64,
        rand::thread_rng().r#gen(),
    )
}

/// The node's Automerge actor: made once, kept in the data directory (`actor-id`, 16 bytes in
/// hex), never shared by two nodes.
///
/// With an enrolment (`device_key`: the device's raw Ed25519 public key) the actor is bound to the
/// key (`sync/PROTOCOL.md`, "Actors and keys"): its first half is derived from the key, its second
/// half is the replica's own 8 random bytes, drawn once and kept in the same file. The hub refuses
/// new changes whose actor is not bound to the uploading device's key (`foreign-actor`).
///
/// An `actor-id` that is not bound to `device_key` — the random actor of a node that ran before
/// it was enrolled, or the actor of an earlier enrolment with another key — is replaced by a
/// freshly drawn bound one (and logged). Keeping it would make every later change unsyncable;
/// Automerge is fine with one document carrying several actors. Requests written under the old
/// actor stay on the node but the hub will not take them: enrol a bus before it takes requests.
pub fn load_or_create_actor(data_dir: &Path, device_key: Option<&[u8]>) -> anyhow::Result<ActorId> {
    let path = data_dir.join("actor-id");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .with_context(|| format!("{} is not hex", path.display()))?;
            anyhow::ensure!(bytes.len() == 16, "{} must hold 16 bytes", path.display());
            Some(ActorId::from(bytes))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let actor = match (existing, device_key) {
        (Some(actor), None) => return Ok(actor),
        (Some(actor), Some(key)) if protocol::actor_is_bound(&actor, key) => return Ok(actor),
        (Some(actor), Some(key)) => {
            tracing::warn!(
                old = %actor,
                "the node's actor is not bound to its device key (made before enrolment, or by an earlier one); a new bound actor replaces it"
            );
            protocol::bound_actor(key, rand::thread_rng().r#gen())
        }
        (None, Some(key)) => protocol::bound_actor(key, rand::thread_rng().r#gen()),
        (None, None) => ActorId::from(rand::thread_rng().r#gen::<[u8; 16]>().to_vec()),
    };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    write_durably(&path, actor.to_hex_string().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(actor)
}

/// Writes `path` through a temporary file and a rename, both flushed: a crash leaves the old
/// file or the new one, never half of one.
fn write_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
