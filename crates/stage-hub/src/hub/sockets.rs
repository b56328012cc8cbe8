//! The hub's socket table: a registered socket's mio token is its index.
//!
//! Every readiness event names a token, and the hub must find the socket's
//! [`IoSlot`] from it: once per message an echo server handles. A hash map
//! does that by hashing the token and probing a control byte and a bucket,
//! two cache lines that, with 10,000 connections, are rarely still cached.
//! Here the token *is* the position in a vector, so the lookup is one
//! bounds check and one line (which holds eight neighbouring slots).
//!
//! A closed socket's index is handed to the next socket registered, so the
//! vector stays as long as the most sockets open at once. A token can thus
//! come back while a readiness event for its old socket is still on its way
//! (the kernel queued it before the socket was deregistered); the new
//! socket then gets one spurious wake, which every wait already tolerates
//! (see [`io`](super::io)).
//!
//! Not the `slab` crate, which does the same job: its entries are an enum of
//! "vacant, next free" or the value, two words each, where `Option<Rc<_>>`
//! is one (the null pointer is `None`). With the free indices kept apart,
//! the table costs a connection 8 bytes, and at most 16 while the vector
//! has doubled ahead of the count.
//!
//! ```text
//!   token:   0      1      2      3      4
//!          ┌──────┬──────┬──────┬──────┬──────┐
//!   slots  │ Rc ─►│ None │ Rc ─►│ Rc ─►│ None │     free: [4, 1]
//!          └──────┴──────┴──────┴──────┴──────┘     (the next token is 1)
//! ```

use std::rc::Rc;

use super::io::IoSlot;

/// Registered sockets by mio token.
#[derive(Default)]
pub(crate) struct Sockets {
    slots: Vec<Option<Rc<IoSlot>>>,
    /// Indices whose socket is gone, reused last-freed first (its line of
    /// the vector is the likeliest to be cached).
    free: Vec<u32>,
}

impl Sockets {
    /// The token the next [`Sockets::insert`] will use.
    pub(crate) fn next_token(&self) -> u32 {
        match self.free.last() {
            Some(&token) => token,
            None => u32::try_from(self.slots.len())
                .expect("four billion sockets open at once in one hub"),
        }
    }

    /// Put `slot` at its token, which must be [`Sockets::next_token`].
    pub(crate) fn insert(&mut self, token: u32, slot: Rc<IoSlot>) {
        debug_assert_eq!(token, self.next_token());
        if self.free.last() == Some(&token) {
            self.free.pop();
            self.slots[token as usize] = Some(slot);
        } else {
            self.slots.push(Some(slot));
        }
    }

    /// The socket registered under `token`, if it is still open.
    #[inline]
    pub(crate) fn get(&self, token: usize) -> Option<&Rc<IoSlot>> {
        self.slots.get(token)?.as_ref()
    }

    /// Forget the socket registered under `token`; its token is free again.
    pub(crate) fn remove(&mut self, token: u32) -> Option<Rc<IoSlot>> {
        let slot = self.slots.get_mut(token as usize)?.take()?;
        self.free.push(token);
        Some(slot)
    }

    /// How many sockets are registered.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(table: &mut Sockets) -> u32 {
        let token = table.next_token();
        table.insert(token, Rc::new(IoSlot::new(token)));
        token
    }

    #[test]
    fn tokens_are_indices_and_closed_ones_come_back() {
        let mut table = Sockets::default();
        let tokens: Vec<u32> = (0..4).map(|_| add(&mut table)).collect();
        assert_eq!(tokens, [0, 1, 2, 3]);
        assert!(table.remove(1).is_some());
        assert!(table.remove(3).is_some());
        assert!(table.remove(3).is_none(), "already gone");
        assert_eq!(table.len(), 2);
        assert!(table.get(1).is_none() && table.get(3).is_none());
        assert!(table.get(99).is_none(), "never handed out");
        // The last freed first, then the other, then new ones at the end.
        assert_eq!([add(&mut table), add(&mut table)], [3, 1]);
        assert_eq!(add(&mut table), 4);
        assert_eq!(table.len(), 5);
        for token in 0..5 {
            let slot = table.get(token as usize).expect("every token is open");
            assert_eq!(slot.token(), token, "each slot sits at its own token");
        }
    }

    #[test]
    fn an_open_token_is_never_handed_out_twice() {
        let mut table = Sockets::default();
        let mut open = std::collections::BTreeSet::new();
        // Open and close in a pattern that mixes reuse and growth.
        for step in 0..200u32 {
            if step % 3 == 2 {
                let victim = *open.iter().nth((step as usize * 7) % open.len()).unwrap();
                open.remove(&victim);
                table.remove(victim);
            } else {
                assert!(open.insert(add(&mut table)), "token handed out twice");
            }
            assert_eq!(table.len(), open.len());
        }
        assert!(table.slots.len() < 200, "closed tokens were reused");
        while let Some(token) = open.pop_first() {
            table.remove(token);
        }
        assert!(table.is_empty());
    }
}
