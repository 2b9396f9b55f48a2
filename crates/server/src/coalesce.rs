//! One TLS write for several HTTP/2 responses.
//!
//! h2 flushes its connection every time it has buffered a DATA frame of 256 bytes or more (it keeps such a
//! payload aside instead of copying it, and has room for one). A connection with ten pre-check answers ready
//! therefore made ten TLS records and ten `writev` calls, each waking the client through the loopback stack:
//! one `writev` a response, against one for three `/health` answers (BENCHMARKS.md, fourteenth run).
//!
//! [`Coalesce`] sits between hyper and the TLS stream of an HTTP/2 connection. Writes go to a buffer, and a
//! flush that follows new writes is put off: the buffer is written out by the next flush that follows none (h2
//! ends each turn of the connection with one), or at the connection's next turn, by its first read (the task
//! is woken whenever a flush is put off, so that turn comes, after the other tasks ready now). All the
//! answers of one turn leave in one write. Nothing waits on a timer, and the buffer is written out as soon as
//! it would pass [`MAX_BUFFERED`] bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write goes through without waiting for the flush.
pub(crate) const MAX_BUFFERED: usize = 64 * 1024;

/// A stream whose flushes wait for the connection's next turn (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Coalesce<S> {
    inner: S,
    /// Off: every call goes straight through (HTTP/1.1, which flushes once an answer anyway).
    on: bool,
    buffered: Vec<u8>,
    /// A flush was put off: the next read, or the next flush after no new writes, writes the buffer out.
    owed: bool,
    /// Bytes were written since the last flush was put off.
    written_since: bool,
}

impl<S> Coalesce<S> {
    pub(crate) fn new(inner: S, on: bool) -> Coalesce<S> {
        let buffered = if on { Vec::with_capacity(16 * 1024) } else { Vec::new() };
        Coalesce { inner, on, buffered, owed: false, written_since: false }
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes the whole buffer to the inner stream and flushes it.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buffered.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffered))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buffered.drain(..written);
        }
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.owed = false;
        Poll::Ready(Ok(()))
    }

    /// Makes room for `len` more bytes: writes the buffer out first when it would pass [`MAX_BUFFERED`].
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if !self.buffered.is_empty() && self.buffered.len() + len > MAX_BUFFERED {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owed {
            // The connection's next turn: what the last one buffered goes out now. A socket that cannot take
            // it yet wakes the task when it can, and the flush stays owed.
            if let Poll::Ready(Err(error)) = this.poll_write_out(cx) {
                return Poll::Ready(Err(error));
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.on {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        ready!(this.poll_room(cx, data.len()))?;
        this.buffered.extend_from_slice(data);
        this.written_since = true;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.on {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        }
        let len = data.iter().map(|slice| slice.len()).sum();
        ready!(this.poll_room(cx, len))?;
        for slice in data {
            this.buffered.extend_from_slice(slice);
        }
        this.written_since = true;
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        self.on || self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered.is_empty() {
            this.owed = false;
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        if this.owed && !this.written_since {
            return this.poll_write_out(cx);
        }
        // Put off; at the latest to the connection's next turn, which this wake-up guarantees.
        this.owed = true;
        this.written_since = false;
        cx.waker().wake_by_ref();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// An inner stream that records each write it is given and has nothing to read.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
    }

    impl AsyncRead for Recorder {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.get_mut().writes.push(data.to_vec());
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ready<T>(poll: Poll<io::Result<T>>) -> T {
        match poll {
            Poll::Ready(Ok(value)) => value,
            other => panic!("expected ready: {:?}", other.map(|r| r.map(|_| ()))),
        }
    }

    #[test]
    fn the_answers_of_one_turn_leave_in_one_write_at_the_next_turn() {
        let wakes = Arc::new(CountWakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut stream = Coalesce::new(Recorder::default(), true);
        for answer in [&b"first"[..], b"second", b"third"] {
            let slices = [io::IoSlice::new(b"head:"), io::IoSlice::new(answer)];
            assert_eq!(ready(Pin::new(&mut stream).poll_write_vectored(&mut cx, &slices)), 5 + answer.len());
            ready(Pin::new(&mut stream).poll_flush(&mut cx));
        }
        assert!(stream.inner.writes.is_empty(), "flushes that follow new writes are put off");
        assert!(wakes.0.load(Ordering::SeqCst) >= 1, "the task is woken for its next turn");
        let mut space = [0u8; 16];
        let mut read = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut stream).poll_read(&mut cx, &mut read).is_pending());
        assert_eq!(stream.inner.writes, [b"head:firsthead:secondhead:third".to_vec()]);
        // Nothing owed any more: a flush with an empty buffer is passed through, no wake-up needed.
        let before = wakes.0.load(Ordering::SeqCst);
        ready(Pin::new(&mut stream).poll_flush(&mut cx));
        assert_eq!((stream.inner.writes.len(), wakes.0.load(Ordering::SeqCst)), (1, before));
    }

    #[test]
    fn a_flush_after_no_new_writes_writes_out_within_the_turn() {
        let waker = std::task::Waker::from(Arc::new(CountWakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut stream = Coalesce::new(Recorder::default(), true);
        ready(Pin::new(&mut stream).poll_write(&mut cx, b"one"));
        ready(Pin::new(&mut stream).poll_flush(&mut cx));
        ready(Pin::new(&mut stream).poll_write(&mut cx, b"two"));
        ready(Pin::new(&mut stream).poll_flush(&mut cx));
        assert!(stream.inner.writes.is_empty());
        ready(Pin::new(&mut stream).poll_flush(&mut cx));
        assert_eq!(stream.inner.writes, [b"onetwo".to_vec()]);
    }

    #[test]
    fn a_full_buffer_and_a_shutdown_write_out_at_once() {
        let waker = std::task::Waker::from(Arc::new(CountWakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut stream = Coalesce::new(Recorder::default(), true);
        let big = vec![7u8; MAX_BUFFERED - 10];
        ready(Pin::new(&mut stream).poll_write(&mut cx, &big));
        assert!(stream.inner.writes.is_empty());
        ready(Pin::new(&mut stream).poll_write(&mut cx, &[1u8; 20]));
        assert_eq!(stream.inner.writes.len(), 1, "the buffer went out before it passed the limit");
        assert_eq!(stream.inner.writes[0].len(), MAX_BUFFERED - 10);
        ready(Pin::new(&mut stream).poll_shutdown(&mut cx));
        assert_eq!(stream.inner.writes[1], vec![1u8; 20], "a shutdown writes out what is left");
    }
}
