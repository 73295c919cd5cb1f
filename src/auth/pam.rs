//! PAM (a build with `--features pam`): system accounts' passwords and account checks
//! go through the PAM service `imap` or `pop3` (config PAM_SERVICE_IMAP/_POP3), so a
//! site's LDAP, SSSD or Kerberos setup in /etc/pam.d applies. Without a file of that
//! name PAM uses /etc/pam.d/other (on Debian: pam_unix, the same shadow check as the
//! built-in path). The packaging issue ships /etc/pam.d/imap and pop3.

use std::ffi::{CString, c_char, c_int, c_void};

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;
/// The item that replaces PAM's own failure delay (Linux-PAM's _pam_types.h).
const PAM_FAIL_DELAY: c_int = 10;

/// PAM's failure delay, taken over: pam_unix asks for 2 s after a wrong password and
/// Linux-PAM would sleep in the calling thread. Our failed-login answer is already
/// held back by the session (held_reply.rs), the same for every failure and without
/// blocking anyone, so PAM's sleep is replaced by nothing, as Dovecot does.
extern "C" fn no_fail_delay(_retval: c_int, _usec_delay: std::ffi::c_uint, _appdata: *mut c_void) {}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata_ptr: *mut c_void,
}

// Linked by its SONAME: only the runtime libpam0g is needed, for the build's own
// architecture and for s390x/arm64 cross builds alike (libpam0g-dev:s390x pulls a
// version-locked multiarch closure that a half-synced mirror cannot satisfy).
#[link(name = "libpam.so.0", modifiers = "+verbatim")]
unsafe extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

/// Answers every password prompt with the client's password; other messages get an
/// empty answer (PAM frees the array and the strings with free()).
extern "C" fn conversation(
    num: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num <= 0 || num > 32 || msgs.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: PAM passes `num` messages (Linux-PAM: an array of pointers) and expects a
    // calloc'ed array of `num` responses; `appdata` is the CString set in `check`.
    unsafe {
        let out =
            libc::calloc(num as usize, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
        if out.is_null() {
            return PAM_BUF_ERR;
        }
        let password = appdata as *const c_char;
        for i in 0..num as usize {
            let m = *msgs.add(i);
            if m.is_null() {
                continue;
            }
            let style = (*m).msg_style;
            if style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON {
                (*out.add(i)).resp = libc::strdup(password);
            }
        }
        *resp = out;
    }
    PAM_SUCCESS
}

/// Authenticate `user` with `password` and check the account (expired, locked) through
/// the PAM `service`. Err: PAM's reason, for the log.
pub fn check(service: &str, user: &str, password: &[u8]) -> Result<(), String> {
    let service_c = CString::new(service).map_err(|_| "bad service name".to_string())?;
    let user_c = CString::new(user).map_err(|_| "bad user name".to_string())?;
    let pass_c = CString::new(password).map_err(|_| "NUL in password".to_string())?;
    let conv = PamConv {
        conv: conversation,
        appdata_ptr: pass_c.as_ptr() as *mut c_void,
    };
    let mut h: *mut c_void = std::ptr::null_mut();
    // SAFETY: all pointers are valid C strings / structs living until pam_end.
    unsafe {
        let rc = pam_start(service_c.as_ptr(), user_c.as_ptr(), &conv, &mut h);
        if rc != PAM_SUCCESS {
            return Err(format!("pam_start failed ({rc})"));
        }
        let why = |h: *mut c_void, rc: c_int| {
            let s = pam_strerror(h, rc);
            if s.is_null() {
                format!("PAM error {rc}")
            } else {
                std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        };
        let delay_fn: extern "C" fn(c_int, std::ffi::c_uint, *mut c_void) = no_fail_delay;
        let rc = pam_set_item(h, PAM_FAIL_DELAY, delay_fn as *const c_void);
        if rc != PAM_SUCCESS {
            let e = why(h, rc);
            pam_end(h, rc);
            return Err(format!("PAM cannot take over its failure delay: {e}"));
        }
        let mut rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        let mut result = if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(format!("PAM: {}", why(h, rc)))
        };
        if result.is_ok() {
            rc = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
            if rc != PAM_SUCCESS {
                result = Err(format!("PAM account: {}", why(h, rc)));
            }
        }
        pam_end(h, rc);
        result
    }
}
