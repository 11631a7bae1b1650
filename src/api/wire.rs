//! Wire names of enums: one mechanism for every wire.
//!
//! An enum's name in a status, a condition reason, an event, a webhook payload,
//! a CSV or JSON report and a table is its serde name, the one the CRD schema
//! lists: [`name`] reads it from the type's `Serialize`, and [`wire_names!`]
//! gives a type `as_str`, `Display` and `parse` from it. No wire prints Rust
//! `Debug` output, which would change with a rename nobody sees as a wire change.

use std::fmt;

use serde::{
    de::{value::StrDeserializer, IntoDeserializer},
    ser::{Impossible, Serialize, Serializer},
    Deserialize,
};

/// The serde name of a unit variant (`""` for anything else, which no enum
/// given to [`wire_names!`] has).
pub fn name<T: Serialize + ?Sized>(value: &T) -> &'static str {
    value.serialize(VariantName).unwrap_or_default()
}

/// The unit variant whose serde name is `s`, if any.
pub fn parse<'de, T: Deserialize<'de>>(s: &'de str) -> Option<T> {
    let de: StrDeserializer<'de, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).ok()
}

/// Gives enums of unit variants `as_str`, `parse` and `Display`, all from their
/// serde names.
#[macro_export]
macro_rules! wire_names {
    ($($t:ty),+ $(,)?) => {$(
        impl $t {
            /// The name as written on every wire (the serde name).
            pub fn as_str(self) -> &'static str {
                $crate::api::wire::name(&self)
            }

            /// Reads a name back; `None` for any other string.
            pub fn parse(s: &str) -> Option<Self> {
                $crate::api::wire::parse(s)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

/// Not a unit variant.
#[derive(Debug)]
pub struct NotAName;

impl fmt::Display for NotAName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a unit variant")
    }
}

impl std::error::Error for NotAName {}

impl serde::ser::Error for NotAName {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotAName
    }
}

struct VariantName;

macro_rules! refuse {
    ($($method:ident($($arg:ty),*)),+ $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<&'static str, NotAName> {
            Err(NotAName)
        }
    )+};
}

impl Serializer for VariantName {
    type Ok = &'static str;
    type Error = NotAName;
    type SerializeSeq = Impossible<&'static str, NotAName>;
    type SerializeTuple = Impossible<&'static str, NotAName>;
    type SerializeTupleStruct = Impossible<&'static str, NotAName>;
    type SerializeTupleVariant = Impossible<&'static str, NotAName>;
    type SerializeMap = Impossible<&'static str, NotAName>;
    type SerializeStruct = Impossible<&'static str, NotAName>;
    type SerializeStructVariant = Impossible<&'static str, NotAName>;

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotAName> {
        Ok(variant)
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<&'static str, NotAName> {
        Err(NotAName)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAName> {
        Err(NotAName)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAName> {
        Err(NotAName)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAName> {
        Err(NotAName)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAName> {
        Err(NotAName)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAName> {
        Err(NotAName)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAName> {
        Err(NotAName)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAName> {
        Err(NotAName)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotAName> {
        Err(NotAName)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAName> {
        Err(NotAName)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
    enum Plain {
        TimedOut,
        #[serde(rename = "managed-externally")]
        Renamed,
    }

    crate::wire_names!(Plain);

    #[test]
    fn the_wire_name_is_the_serde_name_renames_included() {
        assert_eq!(Plain::TimedOut.as_str(), "TimedOut");
        assert_eq!(Plain::Renamed.to_string(), "managed-externally");
        assert_eq!(Plain::parse("managed-externally"), Some(Plain::Renamed));
        assert_eq!(Plain::parse("Renamed"), None);
        assert_eq!(super::name(&5u8), "");
    }
}
