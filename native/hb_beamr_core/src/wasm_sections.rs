//! A minimal reader of a WebAssembly binary's section list: enough to tell
//! whether a module uses a feature before handing it to a tool that would
//! only say "invalid section id".

/// The tag section (exception handling).
const TAG_SECTION_ID: u8 = 13;

fn leb_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut result: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(result).ok();
        }
    }
    None
}

/// The ids of the module's sections, in order (`None` if malformed).
pub fn section_ids(wasm: &[u8]) -> Option<Vec<u8>> {
    if wasm.get(..4)? != b"\0asm" || wasm.len() < 8 {
        return None;
    }
    let mut at = 8;
    let mut ids = Vec::new();
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb_u32(wasm, &mut at)? as usize;
        at = at.checked_add(size)?;
        if at > wasm.len() {
            return None;
        }
        ids.push(id);
    }
    Some(ids)
}

/// Whether the module declares exception tags (the exception-handling proposal).
pub fn uses_exception_handling(wasm: &[u8]) -> bool {
    section_ids(wasm).is_some_and(|ids| ids.contains(&TAG_SECTION_ID))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn lists_sections() {
        let mut wasm = HEADER.to_vec();
        wasm.extend_from_slice(&[1, 1, 0]); // type section, 1 byte
        wasm.extend_from_slice(&[13, 0]); // tag section, empty
        assert_eq!(section_ids(&wasm), Some(vec![1, 13]));
        assert!(uses_exception_handling(&wasm));
    }

    #[test]
    fn malformed_modules_are_none() {
        assert_eq!(section_ids(b"junk"), None);
        let mut truncated = HEADER.to_vec();
        truncated.extend_from_slice(&[1, 5, 0]);
        assert_eq!(section_ids(&truncated), None);
        assert!(!uses_exception_handling(&truncated));
        assert_eq!(section_ids(HEADER), Some(vec![]));
    }
}
