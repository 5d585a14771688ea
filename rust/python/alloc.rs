//! The extension's allocator: compression state straight from the kernel.
//!
//! Measured with 1000 connections that exchanged one compressed message
//! each: once idle connections dropped their zlib state, glibc's malloc kept
//! the freed 128 KiB hash tables in the process (its mmap threshold rises
//! after the first such free), so resident memory did not go down at all.
//! zlib's blocks of 64 KiB and more are therefore mapped and unmapped
//! directly and go back to the system when freed. They are told apart by
//! their 64-byte alignment: byte buffers (alignment 1), such as a large
//! message being received, stay with the system allocator, which reuses
//! their memory from one message to the next; mapping those afresh cost a
//! page fault per 4 KiB, three times the copy itself. This covers only the
//! extension's Rust allocations, not Python's objects.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Threshold above which blocks are mapped directly.
const LARGE: usize = 64 * 1024;
/// zlib-rs allocates its state with this alignment (for SIMD).
const ZLIB_ALIGN: usize = 64;
/// mmap returns page-aligned memory; larger alignments go to the system.
const PAGE_ALIGN: usize = 4096;

/// See the module documentation.
pub struct LargePagesToTheSystem;

fn is_large(size: usize, align: usize) -> bool {
    size >= LARGE && (ZLIB_ALIGN..=PAGE_ALIGN).contains(&align)
}

// SAFETY: every block is released by the allocator that produced it: the
// choice depends only on (size, align), which `dealloc` and `realloc`
// receive unchanged from the allocation (GlobalAlloc's contract), and
// `realloc` moves a block between the two kinds by copying.
unsafe impl GlobalAlloc for LargePagesToTheSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: an anonymous private mapping has no preconditions.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                ptr::null_mut()
            } else {
                p.cast()
            }
        } else {
            // SAFETY: forwarded with the caller's valid layout.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: fresh anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded with the caller's valid layout.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: `ptr` was mapped by `alloc` with this very size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: `ptr` came from System with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        match (is_large(layout.size(), align), is_large(new_size, align)) {
            (true, true) => {
                // SAFETY: `ptr` is a mapping of `layout.size()` bytes; the
                // kernel moves or grows it without copying pages.
                let p = unsafe { libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
                if p == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    p.cast()
                }
            }
            // SAFETY: both sizes stay with System.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the new layout is valid (same alignment, size
                // checked by the caller); the copy covers the smaller size.
                unsafe {
                    let new_layout = Layout::from_size_align_unchecked(new_size, align);
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}
