//! Helpers for the API description of types whose wire shape a derive
//! cannot state (a flattened struct whose parts each refuse unknown
//! fields: utoipa's `allOf` would keep both parts' `additionalProperties:
//! false`, so no value could satisfy it).

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// One more property of an object schema.
pub struct Extra {
    pub name: &'static str,
    pub schema: RefOr<Schema>,
    pub required: bool,
}

/// `base` (an object schema) with `extra` properties added to it.
pub fn object_with(mut base: RefOr<Schema>, extra: Vec<Extra>) -> RefOr<Schema> {
    if let RefOr::T(Schema::Object(object)) = &mut base {
        for property in extra {
            if property.required {
                object.required.push(property.name.to_owned());
            }
            object
                .properties
                .insert(property.name.to_owned(), property.schema);
        }
    }
    base
}

/// A country: one of the ISO 3166-1 alpha-2 codes the services accept
/// (listed, so a client and the contract check know which).
pub fn country_code() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("ISO 3166-1 alpha-2 country code"))
        .enum_values(Some(mpanel_domain::contact::country_codes()))
        .build()
}

/// [`country_code`], or `null` where the country is optional in an answer.
pub fn country_code_or_null() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let mut codes: Vec<serde_json::Value> = mpanel_domain::contact::country_codes()
        .into_iter()
        .map(serde_json::Value::from)
        .collect();
    codes.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("ISO 3166-1 alpha-2 country code, or null"))
        .enum_values(Some(codes))
        .build()
}
