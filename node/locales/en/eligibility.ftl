# Eligibility: why a request needs a clerk or is not possible, and the document families.
# The keys follow busloket_sync::eligibility::Reason::code and catalogue::Family.
# Read on a tablet, often by seniors: short, plain and polite.

## Document families

family-civil-status = Civil-status records
family-population = Population register certificates
family-criminal-record = Criminal record extracts
family-counter = At the counter, in person

## Reasons

reason-relation-not-allowed = You cannot request this document for this person.
reason-child-not-minor = Your child is now an adult and must request this document themselves.
reason-physical-presence-needed = You need to see a member of staff in person for this. Please bring your identity card and, if there is one, the original document.
reason-parenthood-needs-check = A member of staff will first check that you may request this for your child.
reason-relation-needs-proof = A member of staff will first ask for proof of your relationship to this person and of why you need the document.
reason-heirship-needs-proof = A member of staff will first ask for proof that you are an heir, for example a certificate of inheritance.
reason-representation-needs-proof = A member of staff will first ask for proof that you are the legal representative, for example the court decision.
reason-proxy-needs-check = A member of staff will first check the signed proxy and a copy of the identity card of the person concerned.
reason-public-act-needs-check = Only old records are open to everyone. A member of staff will check whether you may receive this one.
reason-type-never-automatic = A member of staff checks every request for this document.
reason-authentication-too-weak = A member of staff will first check who you are. With your identity card and PIN code it is quicker.
