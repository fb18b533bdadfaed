//! Text that C code wrote into a fixed buffer.

use std::ffi::c_char;

/// The NUL-terminated text at the start of `buf` (all of it if there is no
/// NUL), invalid UTF-8 replaced.
pub fn from_buffer(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_first_nul() {
        let buf = [b'h' as c_char, b'i' as c_char, 0, b'x' as c_char];
        assert_eq!(from_buffer(&buf), "hi");
        assert_eq!(from_buffer(&[b'a' as c_char]), "a");
        assert_eq!(from_buffer(&[]), "");
    }
}
