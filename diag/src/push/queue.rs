//! [`Queue`]: the bounded queue of encoded, compressed remote write requests waiting to be
//! sent. When it is full, the oldest request makes room for the newest (the most recent data
//! matters most after an outage), and its samples are reported to the caller to count.

use std::collections::VecDeque;

use bytes::Bytes;

/// One compressed `WriteRequest`, ready to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The snappy-compressed body.
    pub(crate) body: Bytes,
    /// The samples it carries (one per series in remote write 1.0).
    pub(crate) samples: u64,
}

/// At most `capacity` requests, oldest first.
#[derive(Debug)]
pub(crate) struct Queue {
    requests: VecDeque<Request>,
    capacity: usize,
}

impl Queue {
    /// An empty queue of at most `capacity` requests (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { requests: VecDeque::with_capacity(capacity), capacity }
    }

    /// Appends `request`; when the queue was full, returns the oldest request, removed to make
    /// room for it.
    pub(crate) fn push(&mut self, request: Request) -> Option<Request> {
        let dropped = if self.requests.len() == self.capacity { self.requests.pop_front() } else { None };
        self.requests.push_back(request);
        dropped
    }

    /// The oldest request, the next to send.
    pub(crate) fn front(&self) -> Option<&Request> {
        self.requests.front()
    }

    /// Removes the oldest request (sent, or rejected by the receiver).
    pub(crate) fn pop(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// Requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u64) -> Request {
        Request { body: Bytes::from(n.to_string()), samples: n }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_keeps_order() {
        let mut q = Queue::new(3);
        assert!(q.is_empty());
        for n in 1..=3 {
            assert_eq!(q.push(request(n)), None);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.push(request(4)), Some(request(1)));
        assert_eq!(q.push(request(5)), Some(request(2)));
        assert_eq!(q.len(), 3);
        assert_eq!(q.front(), Some(&request(3)));
        assert_eq!(q.pop(), Some(request(3)));
        assert_eq!(q.push(request(6)), None, "room again after a pop");
        let rest: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|r| r.samples).collect();
        assert_eq!(rest, [4, 5, 6]);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_zero_capacity_still_holds_one_request() {
        let mut q = Queue::new(0);
        assert_eq!(q.push(request(1)), None);
        assert_eq!(q.push(request(2)), Some(request(1)));
        assert_eq!(q.len(), 1);
    }
}
