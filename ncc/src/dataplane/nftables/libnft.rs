//! Talking to the kernel through libnftables in process ([`NftLib`]): the library the `nft`
//! binary is built on, loaded at run time (`libnftables.so.1`, shipped with nftables), with one
//! `nft_ctx` kept for the plane's life. A transaction is the same script text the binary reads
//! (`nft_run_cmd_from_buffer`: parsed, checked and committed as one batch), so the scripts, their
//! atomicity and their error messages are the binary's.
//!
//! Why not the binary: each `nft -f` is a new process that loads the library and, before it can
//! check a script that names a chain, reads the table's chains from the kernel. With 10,000
//! services in the table that is 25–35 ms of every health flip. The kept context reuses its
//! cache while the kernel's ruleset generation says it is current, so a flip costs what it
//! writes (`bench/nft_flips.sh`, `bench/RESULTS.md`).
//!
//! The context is not thread-safe: one mutex serialises every call (the reconciler's commits and
//! the lc/wlc re-weighting's rewrites are already serialised by the plane's mirror lock). The
//! context's netlink socket belongs to the network namespace [`NftLib::open`] ran in. Unlike
//! the binary there is no deadline: a netlink batch to the kernel does not hang, and the thread
//! that waits is the reconciler's own, never the async runtime's.

#![allow(
    unsafe_code,
    reason = "calls into libnftables' C API; each call's contract is stated where it is made"
)]

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use super::runner::NftRunner;
use crate::NccError;

/// `NFT_CTX_DEFAULT`.
const NFT_CTX_DEFAULT: u32 = 0;
/// `NFT_CTX_OUTPUT_JSON` (`nft -j`).
const NFT_CTX_OUTPUT_JSON: c_uint = 1 << 4;
/// The library's file name (Debian: package `libnftables1`, a dependency of `nftables`).
const LIBRARY: &str = "libnftables.so.1";

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type CtxInt = unsafe extern "C" fn(*mut c_void) -> c_int;
type CtxBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type SetFlags = unsafe extern "C" fn(*mut c_void, c_uint);
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// The entry points used, resolved once.
struct Api {
    ctx_new: CtxNew,
    ctx_free: CtxFree,
    buffer_output: CtxInt,
    buffer_error: CtxInt,
    output: CtxBuffer,
    error: CtxBuffer,
    set_flags: SetFlags,
    run: RunCmd,
}

/// One context and the library it came from (dropped after the context).
struct Ctx {
    api: Api,
    ctx: NonNull<c_void>,
    _lib: libloading::Library,
}

// SAFETY: an `nft_ctx` has no thread affinity; it must only not be used by two threads at once,
// which the mutex around every `Ctx` guarantees.
unsafe impl Send for Ctx {}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from `nft_ctx_new` of this library, which is still loaded, and is
        // freed exactly once.
        unsafe { (self.api.ctx_free)(self.ctx.as_ptr()) }
    }
}

/// A kept libnftables context: an [`NftRunner`] without a process per call.
#[derive(Clone)]
pub struct NftLib {
    ctx: Arc<Mutex<Ctx>>,
    /// The netlink socket of the batches this plane writes itself, and of the generation.
    nl: Arc<Mutex<super::loads::NfnlLoads>>,
}

impl std::fmt::Debug for NftLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NftLib")
    }
}

fn symbol<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, NccError> {
    // SAFETY: every `T` used is the C prototype of `name` in `nftables/libnftables.h`
    // (nftables 0.9 to 1.1).
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| NccError::Plane(format!("{LIBRARY} has no {name}: {e}")))
}

impl NftLib {
    /// Loads the library and makes a context in this thread's network namespace. An error
    /// (never a fallback to the binary) when the library is missing.
    pub fn open() -> Result<Self, NccError> {
        // SAFETY: loading libnftables runs its initialisers, which only set up its own state.
        let lib = unsafe { libloading::Library::new(LIBRARY) }.map_err(|e| {
            NccError::Plane(format!(
                "cannot load {LIBRARY} (install nftables, which ships it): {e}"
            ))
        })?;
        let api = Api {
            ctx_new: symbol(&lib, "nft_ctx_new")?,
            ctx_free: symbol(&lib, "nft_ctx_free")?,
            buffer_output: symbol(&lib, "nft_ctx_buffer_output")?,
            buffer_error: symbol(&lib, "nft_ctx_buffer_error")?,
            output: symbol(&lib, "nft_ctx_get_output_buffer")?,
            error: symbol(&lib, "nft_ctx_get_error_buffer")?,
            set_flags: symbol(&lib, "nft_ctx_output_set_flags")?,
            run: symbol(&lib, "nft_run_cmd_from_buffer")?,
        };
        // SAFETY: `nft_ctx_new` takes a flags word and returns a new context or NULL.
        let raw = unsafe { (api.ctx_new)(NFT_CTX_DEFAULT) };
        let ctx = NonNull::new(raw)
            .ok_or_else(|| NccError::Plane("nft_ctx_new failed (out of memory?)".into()))?;
        let ctx = Ctx {
            api,
            ctx,
            _lib: lib,
        };
        // SAFETY: `ctx` is a live context; buffering makes the library keep output and errors
        // in memory for the getters below instead of printing them.
        let buffered = unsafe {
            (ctx.api.buffer_output)(ctx.ctx.as_ptr()) == 0
                && (ctx.api.buffer_error)(ctx.ctx.as_ptr()) == 0
        };
        if !buffered {
            return Err(NccError::Plane(
                "libnftables cannot buffer its output".into(),
            ));
        }
        // SAFETY: as above; JSON output is what `nft -j` sets.
        unsafe { (ctx.api.set_flags)(ctx.ctx.as_ptr(), NFT_CTX_OUTPUT_JSON) };
        Ok(Self {
            ctx: Arc::new(Mutex::new(ctx)),
            nl: Arc::new(Mutex::new(super::loads::NfnlLoads::opened()?)),
        })
    }

    /// Runs `text` as one command buffer: Ok(output) or Err(the library's error text).
    fn call(&self, text: &str) -> Result<Result<String, String>, NccError> {
        let cmd = CString::new(text)
            .map_err(|_| NccError::Plane("an nft script holds a NUL byte".into()))?;
        let c = self.ctx.lock().unwrap_or_else(|e| e.into_inner());
        let p = c.ctx.as_ptr();
        // SAFETY: `p` is a live context used by this thread alone (the lock); `cmd` is a
        // NUL-terminated string that outlives the call. The getters return the context's own
        // NUL-terminated buffers (rewound for the next call), copied before the lock is released.
        unsafe {
            let rc = (c.api.run)(p, cmd.as_ptr());
            let out = text_of((c.api.output)(p));
            let err = text_of((c.api.error)(p));
            Ok(if rc == 0 { Ok(out) } else { Err(err) })
        }
    }
}

/// A copy of a C string the library owns (empty for NULL).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the duration of the call.
unsafe fn text_of(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl NftRunner for NftLib {
    fn list(&self, table: &str) -> Result<String, NccError> {
        match self.call(&format!("list table {table}"))? {
            Ok(json) => Ok(json),
            Err(e) if e.contains("No such file or directory") => Ok(String::new()),
            Err(e) => Err(NccError::Plane(format!(
                "nft list table {table}: {}",
                e.trim()
            ))),
        }
    }

    fn run(&self, script: &str) -> Result<(), NccError> {
        self.call(script)?
            .map(drop)
            .map_err(|e| super::runner::transaction_failed(&e, script))
    }

    fn generation(&self) -> Option<u32> {
        let mut nl = self.nl.lock().unwrap_or_else(|e| e.into_inner());
        nl.generation().ok()
    }

    fn batches(&self) -> Option<&Mutex<super::loads::NfnlLoads>> {
        Some(&self.nl)
    }
}
