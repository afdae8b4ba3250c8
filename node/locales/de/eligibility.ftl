# Eligibility: why a request needs a clerk or is not possible, and the document families.
# The keys follow busloket_sync::eligibility::Reason::code and catalogue::Family.
# Read on a tablet, often by seniors: short, plain and polite.

## Document families

family-civil-status = Personenstandsurkunden
family-population = Bescheinigungen aus dem Bevölkerungsregister
family-criminal-record = Auszüge aus dem Strafregister
family-counter = Am Schalter, persönlich

## Reasons

reason-relation-not-allowed = Sie können dieses Dokument für diese Person nicht beantragen.
reason-child-not-minor = Ihr Kind ist volljährig und muss dieses Dokument selbst beantragen.
reason-physical-presence-needed = Dafür müssen Sie persönlich zu einem Mitarbeiter kommen. Bringen Sie Ihren Personalausweis und gegebenenfalls das Originaldokument mit.
reason-parenthood-needs-check = Ein Mitarbeiter prüft zuerst, ob Sie dieses Dokument für Ihr Kind beantragen dürfen.
reason-relation-needs-proof = Ein Mitarbeiter bittet Sie zuerst um einen Nachweis Ihrer Beziehung zu dieser Person und des Grundes für Ihren Antrag.
reason-heirship-needs-proof = Ein Mitarbeiter bittet Sie zuerst um einen Nachweis, dass Sie Erbe sind, zum Beispiel eine Erbbescheinigung.
reason-representation-needs-proof = Ein Mitarbeiter bittet Sie zuerst um einen Nachweis, dass Sie der gesetzliche Vertreter sind, zum Beispiel den Gerichtsbeschluss.
reason-proxy-needs-check = Ein Mitarbeiter prüft zuerst die unterschriebene Vollmacht und eine Kopie des Personalausweises der betroffenen Person.
reason-public-act-needs-check = Nur alte Urkunden sind für alle zugänglich. Ein Mitarbeiter prüft, ob Sie diese Urkunde erhalten dürfen.
reason-type-never-automatic = Ein Mitarbeiter prüft jeden Antrag für dieses Dokument.
reason-authentication-too-weak = Ein Mitarbeiter prüft zuerst Ihre Identität. Mit Ihrem Personalausweis und Ihrer PIN geht es schneller.
