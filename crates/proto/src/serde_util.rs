//! Lenient deserializers for the Mesos JSON mapping: numbers may arrive as strings, doubles may be
//! `"Infinity"` or `"NaN"`, `null` means unset (mesos-http-api.md section 1, "input").

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct LenientF64;

impl<'de> Visitor<'de> for LenientF64 {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a string holding a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            other => other
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("'{other}' is not a number"))),
        }
    }
}

pub fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(LenientF64)
}

pub fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, a string holding a number, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            lenient_f64(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

struct LenientI64;

impl<'de> Visitor<'de> for LenientI64 {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a string holding an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() < 9.2e18 {
            Ok(v as i64)
        } else {
            Err(E::custom(format!("{v} is not an integer")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom(format!("'{v}' is not an integer")))
    }
}

pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(LenientI64)
}

pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = lenient_i64(d)?;
    u64::try_from(v).map_err(|_| de::Error::custom(format!("{v} is negative")))
}

/// A boolean that may arrive as `"true"`/`"false"`; `null` reads as the default.
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct B;
    impl<'de> Visitor<'de> for B {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(E::custom(format!("'{other}' is not a boolean"))),
            }
        }
    }
    d.deserialize_any(B)
}

/// Doubles keep a fractional part when integral (`15.0`), as protobuf JSON prints them; serde_json
/// already does so for `f64`. Infinity and NaN have no JSON number form and are written as strings.
pub fn ser_f64<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if *v > 0.0 {
        s.serialize_str("Infinity")
    } else {
        s.serialize_str("-Infinity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "lenient_f64")]
        x: f64,
        #[serde(deserialize_with = "lenient_i64")]
        n: i64,
    }

    #[test]
    fn numbers_may_arrive_as_strings() {
        let t: T = serde_json::from_str(r#"{"x":"1.5","n":"7"}"#).unwrap();
        assert_eq!((t.x, t.n), (1.5, 7));
        let t: T = serde_json::from_str(r#"{"x":"Infinity","n":7.0}"#).unwrap();
        assert!(t.x.is_infinite());
        assert!(serde_json::from_str::<T>(r#"{"x":"one","n":1}"#).is_err());
    }
}
