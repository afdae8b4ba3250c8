//! Who is related to whom, so the kiosk can offer "a document for your child / your partner".
//!
//! The authentic source is the national register, reached through the hub (a later issue). In demo
//! mode the synthetic demo citizens' families answer; otherwise the register is unknown and the
//! kiosk offers only "for yourself" and "ask the clerk".

use std::collections::HashMap;

use busloket_hardware::DemoCitizen;
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::Person;
use busloket_sync::terms::Relation;
use chrono::NaiveDate;

/// A person the requester may ask a document for, and how they are related.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relative {
    pub person: Person,
    pub relation: Relation,
    pub minor: bool,
}

pub trait Register: Send + Sync + 'static {
    /// The requester's relatives, or `None` when the register cannot tell.
    fn relatives(&self, of: &NationalNumber, today: NaiveDate) -> Option<Vec<Relative>>;
    /// Whether the person is a minor on `today`, when known.
    fn is_minor(&self, who: &NationalNumber, today: NaiveDate) -> Option<bool>;
}

/// No register reachable: nothing is known.
#[derive(Debug)]
pub struct UnknownRegister;

impl Register for UnknownRegister {
    fn relatives(&self, _of: &NationalNumber, _today: NaiveDate) -> Option<Vec<Relative>> {
        None
    }

    fn is_minor(&self, _who: &NationalNumber, _today: NaiveDate) -> Option<bool> {
        None
    }
}

/// The families of the synthetic demo citizens.
#[derive(Debug)]
pub struct DemoRegister {
    citizens: HashMap<NationalNumber, DemoCitizen>,
}

impl DemoRegister {
    pub fn new(citizens: Vec<DemoCitizen>) -> DemoRegister {
        let citizens = citizens
            .into_iter()
            .filter_map(|citizen| {
                let number = NationalNumber::parse(&citizen.card.national_number).ok()?;
                Some((number, citizen))
            })
            .collect();
        DemoRegister { citizens }
    }

    fn person(&self, digits: &str) -> Option<(Person, &DemoCitizen)> {
        let number = NationalNumber::parse(digits).ok()?;
        let citizen = self.citizens.get(&number)?;
        let name = format!("{} {}", citizen.card.first_names, citizen.card.surname);
        Some((
            Person {
                national_number: number,
                name,
            },
            citizen,
        ))
    }
}

fn minor(citizen: &DemoCitizen, today: NaiveDate) -> bool {
    citizen
        .card
        .birth_date
        .and_then(|birth| today.years_since(birth))
        .is_some_and(|age| age < 18)
}

impl Register for DemoRegister {
    fn relatives(&self, of: &NationalNumber, today: NaiveDate) -> Option<Vec<Relative>> {
        let citizen = self.citizens.get(of)?;
        let mut relatives = Vec::new();
        if let Some((person, _)) = citizen.partner.as_deref().and_then(|nn| self.person(nn)) {
            relatives.push(Relative {
                person,
                relation: Relation::Partner,
                minor: false,
            });
        }
        for child in &citizen.children {
            if let Some((person, child)) = self.person(child) {
                let minor = minor(child, today);
                let relation = if minor {
                    Relation::ParentOfMinor
                } else {
                    Relation::DirectRelative
                };
                relatives.push(Relative {
                    person,
                    relation,
                    minor,
                });
            }
        }
        Some(relatives)
    }

    fn is_minor(&self, who: &NationalNumber, today: NaiveDate) -> Option<bool> {
        self.citizens.get(who).map(|citizen| minor(citizen, today))
    }
}
