//! [`Few`]: a list that is almost always empty, one pointer wide.
//!
//! Every greenlet's entry in the hub has two lists, the interrupts to raise
//! at its waits and the greenlets to tell when it dies, and nearly all the
//! time both are empty. A `Vec` is three words even when empty; at 10,000
//! connections the two would cost 480 kB of a table the hub walks on every
//! wake. Boxed, an empty list is one null pointer, and a list that is used
//! pays one allocation more.

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
}
