# Eligibility: why a request needs a clerk or is not possible, and the document families.
# The keys follow busloket_sync::eligibility::Reason::code and catalogue::Family.
# Read on a tablet, often by seniors: short, plain and polite.

## Document families

family-civil-status = Actes de l'état civil
family-population = Certificats du registre de la population
family-criminal-record = Extraits de casier judiciaire
family-counter = Au guichet, en personne

## Reasons

reason-relation-not-allowed = Vous ne pouvez pas demander ce document pour cette personne.
reason-child-not-minor = Votre enfant est majeur et doit demander ce document lui-même.
reason-physical-presence-needed = Pour cela, vous devez vous présenter en personne auprès d'un agent. Apportez votre carte d'identité et, le cas échéant, le document original.
reason-parenthood-needs-check = Un agent vérifie d'abord que vous pouvez demander ce document pour votre enfant.
reason-relation-needs-proof = Un agent vous demandera d'abord une preuve de votre lien avec cette personne et de la raison de votre demande.
reason-heirship-needs-proof = Un agent vous demandera d'abord une preuve que vous êtes héritier, par exemple un certificat d'hérédité.
reason-representation-needs-proof = Un agent vous demandera d'abord une preuve que vous êtes le représentant légal, par exemple la décision du juge.
reason-proxy-needs-check = Un agent vérifie d'abord la procuration signée et une copie de la carte d'identité de la personne concernée.
reason-public-act-needs-check = Seuls les actes anciens sont accessibles à tous. Un agent vérifie si vous pouvez recevoir cet acte.
reason-type-never-automatic = Un agent examine chaque demande de ce document.
reason-authentication-too-weak = Un agent vérifie d'abord votre identité. Avec votre carte d'identité et votre code PIN, cela va plus vite.
