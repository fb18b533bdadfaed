//! Bounds checks for linear-memory access from Erlang. Offsets and lengths
//! are 64-bit (memory64), and `offset + length` must not overflow.

use std::ops::Range;

use crate::errors::Error;

/// The byte range `[offset, offset + length)` if it lies within a memory of
/// `size` bytes.
pub fn checked_range(offset: u64, length: u64, size: u64) -> Result<Range<usize>, Error> {
    let out_of_bounds = || Error::OutOfBounds {
        offset,
        length,
        size,
    };
    let end = offset.checked_add(length).ok_or_else(out_of_bounds)?;
    if end > size {
        return Err(out_of_bounds());
    }
    let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
    let end = usize::try_from(end).map_err(|_| out_of_bounds())?;
    Ok(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ranges_inside_memory() {
        assert_eq!(checked_range(0, 10, 65536), Ok(0..10));
        assert_eq!(checked_range(65526, 10, 65536), Ok(65526..65536));
        assert_eq!(checked_range(65536, 0, 65536), Ok(65536..65536));
    }

    #[test]
    fn rejects_ranges_past_the_end_or_overflowing() {
        assert!(checked_range(65530, 10, 65536).is_err());
        assert!(checked_range(1_000_000, 13, 65536).is_err());
        assert!(checked_range(u64::MAX, 2, 65536).is_err());
        assert!(checked_range(1, u64::MAX, u64::MAX).is_err());
        assert!(checked_range(0, 1, 0).is_err());
    }
}
