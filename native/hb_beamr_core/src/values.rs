//! WebAssembly values and their conversion to and from Erlang numbers.
//!
//! Erlang has integers of any size and finite doubles; WebAssembly has
//! i32/i64/f32/f64. Arguments arrive as [`Number`]s and are fitted to the
//! parameter kinds of the function being called; results leave as [`Value`]s.
//! Non-finite floats (which Erlang floats cannot hold) travel as the atoms
//! `infinity`, `neg_infinity` and `nan`.

/// The four WebAssembly number types hb_beamr exchanges with Erlang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValKind {
    I32,
    I64,
    F32,
    F64,
}

impl ValKind {
    /// How many 32-bit cells the value takes in WAMR's `argv` arrays.
    pub fn cells(self) -> usize {
        match self {
            ValKind::I32 | ValKind::F32 => 1,
            ValKind::I64 | ValKind::F64 => 2,
        }
    }
}

/// A number as Erlang gave it, before it is fitted to a parameter type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
    /// An integer past 128 bits: out of every type's range (an argument of
    /// no function, an answer of no import).
    Huge,
}

/// A typed WebAssembly value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl Value {
    /// Fits an Erlang number to a parameter of `kind`. Integers may be given
    /// in the signed or the unsigned range of the type (`-1` and `4294967295`
    /// are the same i32); integers are accepted for float parameters; floats
    /// are never silently truncated to integers.
    pub fn fit(number: Number, kind: ValKind) -> Option<Value> {
        match (number, kind) {
            (Number::Int(i), ValKind::I32) => {
                if (i32::MIN as i128..=u32::MAX as i128).contains(&i) {
                    Some(Value::I32(i as u32 as i32))
                } else {
                    None
                }
            }
            (Number::Int(i), ValKind::I64) => {
                if (i64::MIN as i128..=u64::MAX as i128).contains(&i) {
                    Some(Value::I64(i as u64 as i64))
                } else {
                    None
                }
            }
            (Number::Int(i), ValKind::F32) => Some(Value::F32(i as f32)),
            (Number::Int(i), ValKind::F64) => Some(Value::F64(i as f64)),
            (Number::Float(f), ValKind::F32) => Some(Value::F32(f as f32)),
            (Number::Float(f), ValKind::F64) => Some(Value::F64(f)),
            (Number::Float(_), ValKind::I32 | ValKind::I64) => None,
            (Number::Huge, _) => None,
        }
    }

    /// Fits a whole argument list to a parameter list: `None` if the count or
    /// any one value does not fit.
    pub fn fit_all(numbers: &[Number], kinds: &[ValKind]) -> Option<Vec<Value>> {
        if numbers.len() != kinds.len() {
            return None;
        }
        numbers
            .iter()
            .zip(kinds)
            .map(|(n, k)| Value::fit(*n, *k))
            .collect()
    }

    /// Fits an import's answer to its result types. A void import ignores
    /// whatever it is given: HyperBEAM's stub answers `[0]` to every import.
    pub fn fit_answer(numbers: &[Number], results: &[ValKind]) -> Option<Vec<Value>> {
        if results.is_empty() {
            return Some(Vec::new());
        }
        Value::fit_all(numbers, results)
    }

    pub fn kind(self) -> ValKind {
        match self {
            Value::I32(_) => ValKind::I32,
            Value::I64(_) => ValKind::I64,
            Value::F32(_) => ValKind::F32,
            Value::F64(_) => ValKind::F64,
        }
    }

    /// The value in the 64-bit slot layout of WAMR's raw native calling
    /// convention (32-bit values in the low half).
    pub fn to_slot(self) -> u64 {
        match self {
            Value::I32(v) => v as u32 as u64,
            Value::I64(v) => v as u64,
            Value::F32(v) => v.to_bits() as u64,
            Value::F64(v) => v.to_bits(),
        }
    }

    pub fn from_slot(slot: u64, kind: ValKind) -> Value {
        match kind {
            ValKind::I32 => Value::I32(slot as u32 as i32),
            ValKind::I64 => Value::I64(slot as i64),
            ValKind::F32 => Value::F32(f32::from_bits(slot as u32)),
            ValKind::F64 => Value::F64(f64::from_bits(slot)),
        }
    }

    /// Appends the value to a WAMR `argv` cell array (i64/f64 take two cells).
    pub fn push_cells(self, cells: &mut Vec<u32>) {
        match self {
            Value::I32(v) => cells.push(v as u32),
            Value::F32(v) => cells.push(v.to_bits()),
            Value::I64(_) | Value::F64(_) => {
                let bits = self.to_slot();
                cells.push(bits as u32);
                cells.push((bits >> 32) as u32);
            }
        }
    }

    /// Reads values of `kinds` back out of a WAMR `argv` cell array.
    pub fn from_cells(cells: &[u32], kinds: &[ValKind]) -> Option<Vec<Value>> {
        let mut at = 0usize;
        let mut out = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let value = match kind.cells() {
                1 => Value::from_slot(*cells.get(at)? as u64, *kind),
                _ => {
                    let lo = *cells.get(at)? as u64;
                    let hi = *cells.get(at + 1)? as u64;
                    Value::from_slot(lo | (hi << 32), *kind)
                }
            };
            at += kind.cells();
            out.push(value);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integer_past_128_bits_fits_no_type() {
        for kind in [ValKind::I32, ValKind::I64, ValKind::F32, ValKind::F64] {
            assert_eq!(Value::fit(Number::Huge, kind), None);
        }
    }

    #[test]
    fn i32_accepts_signed_and_unsigned_ranges() {
        assert_eq!(
            Value::fit(Number::Int(-1), ValKind::I32),
            Some(Value::I32(-1))
        );
        assert_eq!(
            Value::fit(Number::Int(u32::MAX as i128), ValKind::I32),
            Some(Value::I32(-1))
        );
        assert_eq!(
            Value::fit(Number::Int(i32::MIN as i128), ValKind::I32),
            Some(Value::I32(i32::MIN))
        );
        assert_eq!(
            Value::fit(Number::Int(u32::MAX as i128 + 1), ValKind::I32),
            None
        );
        assert_eq!(
            Value::fit(Number::Int(i32::MIN as i128 - 1), ValKind::I32),
            None
        );
    }

    #[test]
    fn i64_covers_the_full_64_bit_range() {
        assert_eq!(
            Value::fit(Number::Int(i64::MIN as i128), ValKind::I64),
            Some(Value::I64(i64::MIN))
        );
        assert_eq!(
            Value::fit(Number::Int(u64::MAX as i128), ValKind::I64),
            Some(Value::I64(-1))
        );
        assert_eq!(
            Value::fit(Number::Int(u64::MAX as i128 + 1), ValKind::I64),
            None
        );
    }

    #[test]
    fn floats_are_not_truncated_to_integers_but_integers_widen_to_floats() {
        assert_eq!(Value::fit(Number::Float(1.5), ValKind::I32), None);
        assert_eq!(Value::fit(Number::Float(1.0), ValKind::I64), None);
        assert_eq!(
            Value::fit(Number::Int(5), ValKind::F64),
            Some(Value::F64(5.0))
        );
        assert_eq!(
            Value::fit(Number::Float(0.5), ValKind::F32),
            Some(Value::F32(0.5))
        );
    }

    #[test]
    fn fit_all_checks_the_count() {
        let kinds = [ValKind::I32, ValKind::F64];
        assert!(Value::fit_all(&[Number::Int(1)], &kinds).is_none());
        assert_eq!(
            Value::fit_all(&[Number::Int(1), Number::Float(2.0)], &kinds),
            Some(vec![Value::I32(1), Value::F64(2.0)])
        );
    }

    #[test]
    fn a_void_import_ignores_its_answer_and_others_fit_it() {
        assert_eq!(Value::fit_answer(&[Number::Int(0)], &[]), Some(vec![]));
        assert_eq!(Value::fit_answer(&[Number::Huge], &[]), Some(vec![]));
        assert_eq!(
            Value::fit_answer(&[Number::Int(7)], &[ValKind::I64]),
            Some(vec![Value::I64(7)])
        );
        assert!(Value::fit_answer(&[], &[ValKind::I32]).is_none());
        assert!(Value::fit_answer(&[Number::Float(1.0)], &[ValKind::I32]).is_none());
    }

    #[test]
    fn slots_and_cells_round_trip() {
        let values = [
            Value::I32(-2),
            Value::I64(-3),
            Value::F32(1.5),
            Value::F64(-2.25),
        ];
        for v in values {
            assert_eq!(Value::from_slot(v.to_slot(), v.kind()), v);
        }
        let mut cells = Vec::new();
        for v in values {
            v.push_cells(&mut cells);
        }
        assert_eq!(cells.len(), 6);
        let kinds: Vec<ValKind> = values.iter().map(|v| v.kind()).collect();
        assert_eq!(Value::from_cells(&cells, &kinds), Some(values.to_vec()));
        assert_eq!(Value::from_cells(&cells[..5], &kinds), None);
    }
}
