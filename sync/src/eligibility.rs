//! Eligibility: may this requester get this document, and can it be delivered without a clerk?
//!
//! [`decide`] reads one [`DocumentType`] of the catalogue and the facts of one request — how the
//! requester relates to the subject, how strongly they authenticated, whether the subject is a
//! minor — and answers [`Decision::Automatic`], [`Decision::NeedsClerk`] or
//! [`Decision::NotAllowed`], with a [`Reason`] the kiosk shows in the citizen's language. The node
//! asks it to tell the citizen at once; the hub asks it again with the authentic sources' facts.
//!
//! Pure: no IO, no clock. The facts are checked elsewhere (the relation by the register, the
//! authentication by the card); this module only applies the catalogue's rules to them.

use serde::{Serialize, Serializer};

use crate::catalogue::{Delivery, DocumentType};
use crate::terms::{AuthStrength, Relation};

/// The facts of one request that the rules depend on.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EligibilityQuery<'a> {
    pub document: &'a DocumentType,
    /// How the requester relates to the person the document is about.
    pub relation: Relation,
    /// How strongly the requester proved who they are.
    pub authentication: AuthStrength,
    /// Whether the person the document is about is a minor (from the register).
    pub subject_is_minor: bool,
}

/// What happens with a request.
///
/// Serialized as `{"outcome":"automatic"}` or `{"outcome":"needs-clerk","reason":"<code>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum Decision {
    /// Delivered without a clerk, once the hub confirms with the authentic sources.
    Automatic,
    /// Allowed, but a clerk must check something first.
    NeedsClerk(Reason),
    /// This requester may not get this document.
    NotAllowed(Reason),
}

impl Decision {
    /// Why the request is not automatic.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Automatic => None,
            Decision::NeedsClerk(reason) | Decision::NotAllowed(reason) => Some(*reason),
        }
    }

    /// The stable name of the outcome, as in the JSON form.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Automatic => "automatic",
            Decision::NeedsClerk(_) => "needs-clerk",
            Decision::NotAllowed(_) => "not-allowed",
        }
    }
}

/// Why a request needs a clerk or is not allowed. Each has a message `reason-<code>` in
/// `node/locales/*/eligibility.ftl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The catalogue does not let this relation request this document.
    RelationNotAllowed,
    /// `parent-of-minor`, but the child is an adult now.
    ChildNotMinor,
    /// An original to see or a signature to witness: only in person, with a clerk.
    PhysicalPresenceNeeded,
    /// A parent whose parenthood or authority the register alone does not settle for this document.
    ParenthoodNeedsCheck,
    /// Spouse, cohabitant or first-degree relative: the relationship and a legitimate interest
    /// must be proven.
    RelationNeedsProof,
    /// An heir: the certificate of inheritance must be shown.
    HeirshipNeedsProof,
    /// A guardian, administrator or other legal representative: the appointment must be shown.
    RepresentationNeedsProof,
    /// A proxy holder: the signed proxy and the subject's ID must be checked.
    ProxyNeedsCheck,
    /// Anyone: only public acts (old enough) are open, which a clerk checks.
    PublicActNeedsCheck,
    /// A clerk reviews every request for this document.
    TypeNeverAutomatic,
    /// The requester's authentication is weaker than the document requires for automatic
    /// delivery (e.g. no PIN).
    AuthenticationTooWeak,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::RelationNotAllowed,
        Reason::ChildNotMinor,
        Reason::PhysicalPresenceNeeded,
        Reason::ParenthoodNeedsCheck,
        Reason::RelationNeedsProof,
        Reason::HeirshipNeedsProof,
        Reason::RepresentationNeedsProof,
        Reason::ProxyNeedsCheck,
        Reason::PublicActNeedsCheck,
        Reason::TypeNeverAutomatic,
        Reason::AuthenticationTooWeak,
    ];

    /// The stable kebab-case code: the Fluent key is `reason-<code>`, the JSON API uses the code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::RelationNotAllowed => "relation-not-allowed",
            Reason::ChildNotMinor => "child-not-minor",
            Reason::PhysicalPresenceNeeded => "physical-presence-needed",
            Reason::ParenthoodNeedsCheck => "parenthood-needs-check",
            Reason::RelationNeedsProof => "relation-needs-proof",
            Reason::HeirshipNeedsProof => "heirship-needs-proof",
            Reason::RepresentationNeedsProof => "representation-needs-proof",
            Reason::ProxyNeedsCheck => "proxy-needs-check",
            Reason::PublicActNeedsCheck => "public-act-needs-check",
            Reason::TypeNeverAutomatic => "type-never-automatic",
            Reason::AuthenticationTooWeak => "authentication-too-weak",
        }
    }

    /// The Fluent message key of the reason's text.
    pub fn message_key(&self) -> String {
        format!("reason-{}", self.code())
    }

    /// The reason a clerk is needed for a relation whose rule says `delivery = "clerk"`.
    fn clerk_check_for(relation: Relation) -> Reason {
        match relation {
            Relation::ParentOfMinor => Reason::ParenthoodNeedsCheck,
            Relation::Partner | Relation::DirectRelative => Reason::RelationNeedsProof,
            Relation::Heir => Reason::HeirshipNeedsProof,
            Relation::LegalRepresentative => Reason::RepresentationNeedsProof,
            Relation::ProxyHolder => Reason::ProxyNeedsCheck,
            Relation::Anyone => Reason::PublicActNeedsCheck,
            // The catalogue refuses a `clerk` rule for `self` (the eID proves it); a document
            // built by hand with one still goes to a clerk, for review.
            Relation::Myself => Reason::TypeNeverAutomatic,
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

/// Applies the document's rules to one request.
///
/// In order: a relation the document does not list, or a parent asking for a child who is no
/// longer a minor, is not allowed. Then a physical product needs a clerk whoever asks — first,
/// because "come in person" is what the citizen must know. Then a relation a clerk must check,
/// a document a clerk always reviews, and an authentication weaker than the document requires
/// each need a clerk, with that reason. Otherwise the request is automatic.
pub fn decide(query: &EligibilityQuery) -> Decision {
    let document = query.document;
    let Some(rule) = document.rule_for(query.relation) else {
        return Decision::NotAllowed(Reason::RelationNotAllowed);
    };
    if query.relation == Relation::ParentOfMinor && !query.subject_is_minor {
        return Decision::NotAllowed(Reason::ChildNotMinor);
    }
    if document.physical {
        return Decision::NeedsClerk(Reason::PhysicalPresenceNeeded);
    }
    if rule.delivery == Delivery::Clerk {
        return Decision::NeedsClerk(Reason::clerk_check_for(rule.relation));
    }
    if !document.automatic {
        return Decision::NeedsClerk(Reason::TypeNeverAutomatic);
    }
    if query.authentication < document.automatic_requires {
        return Decision::NeedsClerk(Reason::AuthenticationTooWeak);
    }
    Decision::Automatic
}

#[cfg(test)]
mod tests;
