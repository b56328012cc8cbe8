//! [`Few`]: a list that is almost always empty, one pointer wide, and
//! [`Pending`]: two such lists behind one pointer.
//!
//! Every greenlet's entry in the hub has two lists, the interrupts to raise
//! at its waits and the greenlets to tell when it dies, and nearly all the
//! time both are empty. A `Vec` is three words even when empty; at 10,000
//! connections the two would cost 480 kB. Boxed, empty lists are one null
//! pointer, and lists that are used pay one allocation more.

/// A list that is usually empty: `None` until its first element.
#[derive(Debug)]
#[allow(
    clippy::box_collection,
    reason = "the box is the point: one pointer while empty, where a Vec is three words"
)]
pub(crate) struct Few<T>(Option<Box<Vec<T>>>);

impl<T> Default for Few<T> {
    fn default() -> Self {
        Few(None)
    }
}

impl<T> Few<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|v| v.is_empty())
    }

    pub(crate) fn push(&mut self, item: T) {
        self.0.get_or_insert_default().push(item);
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Keep the elements `keep` says yes to; an emptied list is freed.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        if let Some(v) = &mut self.0 {
            v.retain(keep);
            if v.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Remove and return the element at `at`, if there is one.
    pub(crate) fn remove(&mut self, at: usize) -> Option<T> {
        let v = self.0.as_mut()?;
        let item = (at < v.len()).then(|| v.remove(at));
        if v.is_empty() {
            self.0 = None;
        }
        item
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::option::IntoIter<Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|v| *v).into_iter().flatten()
    }
}

/// A greenlet's two rarely used lists, the interrupts to raise at its
/// waits and the greenlets to tell when it dies, behind one pointer: two
/// [`Few`]s would be a word more in every greenlet's entry, and the entry
/// is an allocation of its own whose size decides its heap chunk.
pub(crate) struct Pending<I, W>(Option<Box<Lists<I, W>>>);

/// The lists behind a [`Pending`], while either has anything.
pub(crate) struct Lists<I, W> {
    pub(crate) interrupts: Vec<I>,
    pub(crate) done_waiters: Vec<W>,
}

impl<I, W> Default for Pending<I, W> {
    fn default() -> Self {
        Pending(None)
    }
}

impl<I, W> Pending<I, W> {
    pub(crate) fn interrupts(&self) -> &[I] {
        self.0.as_deref().map_or(&[], |l| l.interrupts.as_slice())
    }

    /// Change the lists (made on first use); freed again once both are empty.
    pub(crate) fn change<R>(&mut self, f: impl FnOnce(&mut Lists<I, W>) -> R) -> R {
        let lists = self.0.get_or_insert_with(|| {
            Box::new(Lists {
                interrupts: Vec::new(),
                done_waiters: Vec::new(),
            })
        });
        let result = f(lists);
        if lists.interrupts.is_empty() && lists.done_waiters.is_empty() {
            self.0 = None;
        }
        result
    }

    /// The greenlets to tell, as it dies.
    pub(crate) fn into_done_waiters(self) -> Vec<W> {
        self.0.map(|l| l.done_waiters).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_wide_and_freed_when_emptied() {
        assert_eq!(
            std::mem::size_of::<Few<u64>>(),
            std::mem::size_of::<usize>()
        );
        let mut few = Few::default();
        assert!(few.is_empty());
        few.push(1);
        few.push(2);
        few.push(3);
        assert_eq!(few.as_slice(), [1, 2, 3]);
        few.retain(|&x| x != 2);
        assert_eq!(few.remove(0), Some(1));
        assert_eq!(few.remove(5), None);
        assert_eq!(few.as_slice(), [3]);
        few.retain(|_| false);
        assert!(few.0.is_none() && few.is_empty());
        few.push(4);
        assert_eq!(few.into_iter().collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn pending_is_one_pointer_and_freed_when_both_lists_empty() {
        assert_eq!(
            std::mem::size_of::<Pending<u8, u64>>(),
            std::mem::size_of::<usize>()
        );
        let mut pending: Pending<u8, u64> = Pending::default();
        assert!(pending.interrupts().is_empty());
        pending.change(|l| l.interrupts.push(1));
        pending.change(|l| l.done_waiters.push(7));
        assert_eq!(pending.interrupts(), [1]);
        pending.change(|l| l.interrupts.clear());
        assert!(pending.0.is_some(), "a waiter is still listed");
        assert_eq!(pending.into_done_waiters(), [7]);
        let mut pending: Pending<u8, u64> = Pending::default();
        pending.change(|l| l.interrupts.push(1));
        pending.change(|l| l.interrupts.retain(|_| false));
        assert!(pending.0.is_none());
        assert!(pending.into_done_waiters().is_empty());
    }
}
