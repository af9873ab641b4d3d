//! One index cell's merchants, kept in order of distance from the cell's
//! centre so a query can walk them nearest-first and stop early.

/// A merchant in a cell's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// Distance from the cell's centre to the merchant's location, in
    /// decimetres rounded down, so `key / 10` never exceeds the true distance
    /// and stays a valid lower bound.
    pub key_dm: u32,
    /// The merchant's slot in `MerchantSearch::merchants`.
    pub merchant: u32,
}

/// Inserts land in an unsorted tail that is merged into the sorted run once
/// it holds a sixteenth of the bucket (at least `PENDING_MIN`): a sorted
/// insert into a bucket of thousands would move kilobytes per merchant and
/// per cell, where this moves about sixteen entries per insert, amortised.
/// A query reads the whole tail, then the run in order.
const PENDING_MIN: usize = 32;

/// The merchants whose service area may touch one cell.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    /// Ascending by (`key_dm`, merchant).
    sorted: Vec<Entry>,
    /// Entries not yet merged into `sorted` (a bounded share of them).
    pending: Vec<Entry>,
}

impl Bucket {
    /// Adds a merchant.
    pub fn insert(&mut self, entry: Entry) {
        self.pending.push(entry);
        if self.pending.len() > PENDING_MIN.max(self.sorted.len() / 16) {
            self.merge_pending();
        }
    }

    /// Merges the sorted tail into the run from the back, in place: no
    /// allocation beyond the run's growth, and only entries greater than
    /// the smallest new one move.
    fn merge_pending(&mut self) {
        self.pending.sort_unstable();
        let (old, new) = (self.sorted.len(), self.pending.len());
        let filler = self.pending[0];
        self.sorted.resize(old + new, filler);
        let (mut i, mut j) = (old, new);
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > self.pending[j - 1] {
                self.sorted[i + j - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[i + j - 1] = self.pending[j - 1];
                j -= 1;
            }
        }
        self.pending.clear();
    }

    /// Removes a merchant; returns whether it was there.
    pub fn remove(&mut self, merchant: u32) -> bool {
        if let Some(i) = self.pending.iter().position(|e| e.merchant == merchant) {
            self.pending.swap_remove(i);
            return true;
        }
        if let Some(i) = self.sorted.iter().position(|e| e.merchant == merchant) {
            self.sorted.remove(i);
            return true;
        }
        false
    }

    /// Whether no merchant is left.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty() && self.pending.is_empty()
    }

    /// The unsorted tail (to be read whole).
    pub fn pending(&self) -> &[Entry] {
        &self.pending
    }

    /// The sorted run, nearest to the cell's centre first.
    pub fn sorted(&self) -> &[Entry] {
        &self.sorted
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_sorted_across_merges_and_removals() {
        let mut b = Bucket::default();
        let mut all = Vec::new();
        for i in 0..2000u32 {
            let e = Entry {
                key_dm: (i * 7919) % 1000,
                merchant: i,
            };
            b.insert(e);
            all.push(e);
        }
        assert_eq!(b.len(), 2000);
        assert!(b.sorted().windows(2).all(|w| w[0] <= w[1]));
        let mut held: Vec<Entry> = b.sorted().iter().chain(b.pending()).copied().collect();
        held.sort();
        all.sort();
        assert_eq!(held, all);
        assert!(b.remove(5));
        assert!(!b.remove(5));
        assert_eq!(b.len(), 1999);
        for i in 0..2000 {
            b.remove(i);
        }
        assert!(b.is_empty());
    }
}
