//! Holder authentication through pcscd: the card's authentication key signs a statement once
//! the holder's PIN is verified.
//!
//! Order matters: the authentication certificate is read and checked (chain to a trust anchor,
//! the expected national number) before VERIFY, so a Kids-ID card without a key, a card of
//! someone else or a card that is not trusted costs no PIN try. After the signature the session
//! logs off and the card is reset, so the verified PIN is left behind for no other program.

use chrono::Utc;
use pcsc::Disposition;

use super::{PcscTransmit, connect, transaction_error, untrusted};
use crate::card::{CardError, HolderAlgorithm, HolderRequest, HolderSignature};
use crate::eid::verify::{verify_authentication_certificate, verify_holder_signature};
use crate::eid::{
    AuthenticationAlgorithm, CardSession, FilePath, SessionError, StatusWord, TransmitError,
    TrustAnchors, VerifyError, X509Certificate,
};

/// Connects, checks the certificate, verifies the PIN, signs, logs off, resets. Blocking.
pub(super) fn authenticate(
    reader: &str,
    request: &HolderRequest,
    anchors: &TrustAnchors,
) -> Result<HolderSignature, CardError> {
    let mut card = connect(reader)?;
    let signed = match card.transaction() {
        Ok(transaction) => {
            let signed = sign(reader, &transaction, request, anchors);
            // Reset as the transaction ends, so no other program sharing the reader gets a
            // moment with the PIN verified, even if LOG OFF did not get through.
            if let Err((_, err)) = transaction.end(Disposition::ResetCard) {
                tracing::debug!(reader, "ending the transaction after signing: {err}");
            }
            signed
        }
        Err(err) => Err(holder_error(
            reader,
            SessionError::Transmit(transaction_error(err)),
        )),
    };
    // Nothing of this session stays on the card for the next program.
    if let Err((_, err)) = card.disconnect(Disposition::ResetCard) {
        tracing::debug!(reader, "disconnect after signing: {err}");
    }
    signed
}

fn sign(
    reader: &str,
    card: &pcsc::Card,
    request: &HolderRequest,
    anchors: &TrustAnchors,
) -> Result<HolderSignature, CardError> {
    let session_error = |err| holder_error(reader, err);
    let mut session = CardSession::new(PcscTransmit { card });
    session.select_applet().map_err(session_error)?;
    let card_data = session.card_data().map_err(session_error)?;
    let authentication_file = match session.read_der_file(FilePath::AUTHENTICATION_CERTIFICATE) {
        Ok(file) => file,
        // A card without the file at all cannot sign either.
        Err(SessionError::Refused { status, .. }) if status == StatusWord::FILE_NOT_FOUND => {
            return Err(CardError::CannotSign {
                reader: reader.to_owned(),
            });
        }
        Err(err) => return Err(session_error(err)),
    };
    let citizen_ca_file = session
        .read_der_file(FilePath::CITIZEN_CA_CERTIFICATE)
        .map_err(session_error)?;
    let certificate = checked_certificate(
        reader,
        &authentication_file,
        &citizen_ca_file,
        request.expected_national_number.as_deref(),
        anchors,
    )?;
    let national_number = certificate
        .subject_serial_number()
        .ok_or_else(|| untrusted(reader, VerifyError::HolderMismatch))?;
    let card_algorithm = card_data.authentication_algorithm();
    let algorithm = match card_algorithm {
        AuthenticationAlgorithm::RsaPkcs1Sha256 => HolderAlgorithm::RsaPkcs1Sha256,
        AuthenticationAlgorithm::EcdsaSha384 => HolderAlgorithm::EcdsaP384Sha384,
    };
    let digest = algorithm.digest(&request.statement);
    session.verify_pin(&request.pin).map_err(session_error)?;
    let signature = session.authenticate(card_algorithm, &digest);
    // Log off whatever the signature gave; the reset that follows is the backstop.
    let logged_off = session.log_off();
    let signature = signature.map_err(session_error)?;
    if let Err(err) = logged_off {
        tracing::debug!(reader, "log off after signing: {err}");
    }
    verify_holder_signature(&certificate, &national_number, &digest, &signature)
        .map_err(|err| untrusted(reader, err))?;
    Ok(HolderSignature {
        national_number,
        algorithm,
        signature,
        certificate_der: certificate.der().to_vec(),
        demo: false,
    })
}

/// The authentication certificate, chained to a trust anchor and, when the caller knows whose
/// card this must be, belonging to that person.
fn checked_certificate(
    reader: &str,
    authentication_file: &[u8],
    citizen_ca_file: &[u8],
    expected_national_number: Option<&str>,
    anchors: &TrustAnchors,
) -> Result<X509Certificate, CardError> {
    let certificate = match verify_authentication_certificate(
        authentication_file,
        citizen_ca_file,
        anchors,
        Utc::now(),
    ) {
        Ok(certificate) => certificate,
        Err(VerifyError::AuthenticationCertificateMissing) => {
            return Err(CardError::CannotSign {
                reader: reader.to_owned(),
            });
        }
        Err(err) => return Err(untrusted(reader, err)),
    };
    if let Some(expected) = expected_national_number
        && certificate.subject_serial_number().as_deref() != Some(expected)
    {
        return Err(untrusted(reader, VerifyError::HolderMismatch));
    }
    Ok(certificate)
}

/// Maps a session error, PIN outcomes included; never mentions the PIN itself.
fn holder_error(reader: &str, err: SessionError) -> CardError {
    let reader = reader.to_owned();
    match err {
        SessionError::WrongPin { tries_left } => CardError::WrongPin { reader, tries_left },
        SessionError::PinBlocked => CardError::PinBlocked { reader },
        SessionError::Transmit(TransmitError::CardRemoved) => CardError::CardRemoved { reader },
        other => CardError::Unreadable {
            reader,
            reason: other.to_string(),
        },
    }
}
