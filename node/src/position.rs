//! Where the bus is: the stop tracker over the GPS fixes and the stop schedule.

pub mod tracker;
