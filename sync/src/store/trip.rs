//! The trip log in the bus's store: entries numbered in order, sealed, kept until the hub has
//! them (`acknowledge_trip`), then until retention removes them.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, layout};
use crate::trip::TripEntry;

impl Store {
    /// Appends `entries` in order, durably (flushed); the number of the last one.
    pub fn append_trip(&self, entries: &[TripEntry]) -> Result<u64, StoreError> {
        let _guard = self.lock();
        let mut next = match self.trip.last()? {
            Some((key, _)) => {
                layout::decode_u64(&key).ok_or(StoreError::Index { tree: layout::TRIP })? + 1
            }
            None => self.meta_u64(layout::TRIP_ACKED)? + 1,
        };
        let mut batch = sled::Batch::default();
        for entry in entries {
            let key = next.to_be_bytes();
            let bytes = postcard::to_allocvec(entry)
                .map_err(|_| StoreError::Index { tree: layout::TRIP })?;
            batch.insert(
                &key,
                self.key.seal(&layout::place(layout::TRIP, &key), &bytes),
            );
            next += 1;
        }
        self.trip.apply_batch(batch)?;
        self.db.flush()?;
        Ok(next - 1)
    }

    /// Up to `limit` entries after number `after`, in order, with their numbers.
    pub fn trip_since(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, TripEntry)>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        self.trip
            .range(start..)
            .take(limit)
            .map(|item| {
                let (key, sealed) = item?;
                let number =
                    layout::decode_u64(&key).ok_or(StoreError::Index { tree: layout::TRIP })?;
                let bytes = self
                    .key
                    .open(&layout::place(layout::TRIP, &key), &sealed)
                    .map_err(|_| StoreError::TripEntry { number })?;
                let entry =
                    postcard::from_bytes(&bytes).map_err(|_| StoreError::TripEntry { number })?;
                Ok((number, entry))
            })
            .collect()
    }

    /// The number of the last entry the hub has.
    pub fn trip_acknowledged(&self) -> Result<u64, StoreError> {
        self.meta_u64(layout::TRIP_ACKED)
    }

    /// Removes the entries the hub has that are older than `before` (retention: the hub keeps
    /// the trip log for the indicators; the bus needs none of it once sent). An acknowledged
    /// entry that no longer opens goes too: the hub has it. Returns how many went; flushed.
    pub fn purge_trip(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let _guard = self.lock();
        let acked = self.meta_u64(layout::TRIP_ACKED)?;
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for item in self.trip.range(..=acked.to_be_bytes()) {
            let (key, sealed) = item?;
            let older = self
                .key
                .open(&layout::place(layout::TRIP, &key), &sealed)
                .ok()
                .and_then(|bytes| postcard::from_bytes::<TripEntry>(&bytes).ok())
                .is_none_or(|entry| entry.at < before);
            if !older {
                // Entries come in time order: the rest are newer.
                break;
            }
            batch.remove(key);
            removed += 1;
        }
        if removed > 0 {
            self.trip.apply_batch(batch)?;
            self.db.flush()?;
        }
        Ok(removed)
    }

    /// Notes that the hub has every entry up to `number` (never goes back).
    pub fn acknowledge_trip(&self, number: u64) -> Result<(), StoreError> {
        let _guard = self.lock();
        if number > self.meta_u64(layout::TRIP_ACKED)? {
            self.meta
                .insert(layout::TRIP_ACKED, &number.to_be_bytes())?;
            self.db.flush()?;
        }
        Ok(())
    }
}
