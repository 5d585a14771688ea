//! `Fifo`: the queue of received messages of an asyncio connection.

use std::collections::VecDeque;

use pyo3::exceptions::PyIndexError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList};
use pyo3::PyTraverseError;

/// Capacity an empty queue keeps; above it, emptying the queue frees its
/// storage, so that a burst leaves nothing behind on an idle connection.
const KEEP_CAPACITY: usize = 8;

/// A first-in, first-out queue of Python objects.
///
/// It does what the connection asks of `collections.deque` (`append`,
/// `popleft`, `extendleft`, `len`, truth, indexing and iteration), but an
/// empty one owns no storage: a `deque` allocates a 64-slot block when it is
/// created, which made it the largest single part of an idle connection
/// (760 bytes of about 8 KiB).
#[pyclass(module = "ferrows._core", sequence)]
#[derive(Default)]
pub struct Fifo {
    items: VecDeque<Py<PyAny>>,
}

#[pymethods]
impl Fifo {
    #[new]
    #[pyo3(signature = (items = None))]
    fn new(items: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut fifo = Fifo::default();
        if let Some(items) = items {
            for item in items.try_iter()? {
                fifo.items.push_back(item?.unbind());
            }
        }
        Ok(fifo)
    }

    /// Adds an item at the end.
    fn append(&mut self, item: Py<PyAny>) {
        self.items.push_back(item);
    }

    /// Removes and returns the first item.
    fn popleft(&mut self) -> PyResult<Py<PyAny>> {
        let item = self
            .items
            .pop_front()
            .ok_or_else(|| PyIndexError::new_err("pop from an empty queue"))?;
        if self.items.is_empty() && self.items.capacity() > KEEP_CAPACITY {
            self.items = VecDeque::new();
        }
        Ok(item)
    }

    /// Adds items at the front, each before the previous one (so in
    /// reverse order), as `deque.extendleft`.
    fn extendleft(slf: &Bound<'_, Self>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        // Collected before borrowing the queue: iterating runs Python code,
        // which may use the queue.
        let items: Vec<Py<PyAny>> = items
            .try_iter()?
            .map(|item| item.map(Bound::unbind))
            .collect::<PyResult<_>>()?;
        let mut fifo = slf.borrow_mut();
        for item in items {
            fifo.items.push_front(item);
        }
        Ok(())
    }

    /// Removes every item.
    fn clear(slf: &Bound<'_, Self>) {
        // Dropped once the queue is no longer borrowed: an item's finalizer
        // may use the queue.
        let items = std::mem::take(&mut slf.borrow_mut().items);
        drop(items);
    }

    fn __len__(&self) -> usize {
        self.items.len()
    }

    fn __getitem__(&self, py: Python<'_>, index: isize) -> PyResult<Py<PyAny>> {
        let len = self.items.len() as isize;
        let at = if index < 0 { index + len } else { index };
        if at < 0 || at >= len {
            return Err(PyIndexError::new_err("queue index out of range"));
        }
        Ok(self.items[at as usize].clone_ref(py))
    }

    /// Iterates over a snapshot: the queue may change while it is iterated.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        let items = self.items.iter().map(|item| item.clone_ref(py));
        PyList::new(py, items)?.try_iter()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let list = PyList::new(py, slf.borrow().items.iter().map(|item| item.clone_ref(py)))?;
        // The items' reprs run Python code: not while the queue is borrowed.
        Ok(format!("Fifo({})", list.repr()?))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for item in &self.items {
            visit.call(item)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.items.clear();
    }
}
