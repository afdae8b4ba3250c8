# Eligibility: why a request needs a clerk or is not possible, and the document families.
# The keys follow busloket_sync::eligibility::Reason::code and catalogue::Family.
# Read on a tablet, often by seniors: short, plain and polite.

## Document families

family-civil-status = Akten van de burgerlijke stand
family-population = Attesten uit het bevolkingsregister
family-criminal-record = Uittreksels uit het strafregister
family-counter = Aan het loket, in persoon

## Reasons

reason-relation-not-allowed = U kunt dit document niet aanvragen voor deze persoon.
reason-child-not-minor = Uw kind is meerderjarig en moet dit document zelf aanvragen.
reason-physical-presence-needed = Hiervoor moet u zelf aanwezig zijn bij een medewerker. Neem uw identiteitskaart en eventueel het originele document mee.
reason-parenthood-needs-check = Een medewerker kijkt eerst na of u dit voor uw kind mag aanvragen.
reason-relation-needs-proof = Een medewerker vraagt u eerst een bewijs van uw band met deze persoon en van de reden van uw aanvraag.
reason-heirship-needs-proof = Een medewerker vraagt u eerst een bewijs dat u erfgenaam bent, bijvoorbeeld een attest van erfopvolging.
reason-representation-needs-proof = Een medewerker vraagt u eerst een bewijs dat u de wettelijke vertegenwoordiger bent, bijvoorbeeld de beslissing van de rechter.
reason-proxy-needs-check = Een medewerker bekijkt eerst de ondertekende volmacht en een kopie van de identiteitskaart van de betrokken persoon.
reason-public-act-needs-check = Alleen oude akten zijn voor iedereen toegankelijk. Een medewerker kijkt na of u deze akte mag krijgen.
reason-type-never-automatic = Een medewerker bekijkt elke aanvraag voor dit document.
reason-authentication-too-weak = Een medewerker kijkt eerst na wie u bent. Met uw identiteitskaart en pincode gaat het sneller.
