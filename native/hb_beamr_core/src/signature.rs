//! Function signatures in HyperBEAM's notation: `(<params>)<results>`, one
//! character per value type: `i` i32, `I` i64, `f` f32, `F` f64.

use crate::values::ValKind;

/// A function type with only number types (what hb_beamr can call or serve).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FuncSig {
    pub params: Vec<ValKind>,
    pub results: Vec<ValKind>,
}

pub fn kind_char(kind: ValKind) -> char {
    match kind {
        ValKind::I32 => 'i',
        ValKind::I64 => 'I',
        ValKind::F32 => 'f',
        ValKind::F64 => 'F',
    }
}

pub fn char_kind(c: char) -> Option<ValKind> {
    match c {
        'i' => Some(ValKind::I32),
        'I' => Some(ValKind::I64),
        'f' => Some(ValKind::F32),
        'F' => Some(ValKind::F64),
        _ => None,
    }
}

impl FuncSig {
    /// `(ii)i` and the like.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(self.params.len() + self.results.len() + 2);
        s.push('(');
        s.extend(self.params.iter().map(|k| kind_char(*k)));
        s.push(')');
        s.extend(self.results.iter().map(|k| kind_char(*k)));
        s
    }

    /// Parses `(ii)i` back; `None` for anything else.
    pub fn parse(text: &str) -> Option<FuncSig> {
        let rest = text.strip_prefix('(')?;
        let (params, results) = rest.split_once(')')?;
        Some(FuncSig {
            params: params.chars().map(char_kind).collect::<Option<_>>()?,
            results: results.chars().map(char_kind).collect::<Option<_>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_hyperbeam_notation() {
        let sig = FuncSig {
            params: vec![ValKind::I32, ValKind::I64],
            results: vec![ValKind::F64],
        };
        assert_eq!(sig.encode(), "(iI)F");
        assert_eq!(FuncSig::default().encode(), "()");
        let f32s = FuncSig {
            params: vec![ValKind::F32],
            results: vec![ValKind::F32, ValKind::I32],
        };
        assert_eq!(f32s.encode(), "(f)fi");
    }

    #[test]
    fn parse_inverts_encode() {
        for text in ["()", "(i)i", "(iIfF)FfIi", "()ii"] {
            assert_eq!(FuncSig::parse(text).map(|s| s.encode()), Some(text.into()));
        }
        assert_eq!(FuncSig::parse("ii"), None);
        assert_eq!(FuncSig::parse("(x)"), None);
        assert_eq!(FuncSig::parse("(i"), None);
    }
}
