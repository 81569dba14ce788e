//! The OpenAPI schemas of the model's enums, made from their text (`as_str`), so the
//! documented names are the parsed ones.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::client::{Action, ClientKind, Restriction, Status};

/// A string schema that takes one of `names`.
fn one_of(description: &str, names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

macro_rules! text_schema {
    ($type:ty, $description:literal) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                one_of($description, <$type>::ALL.map(<$type>::as_str))
            }
        }

        impl utoipa::ToSchema for $type {}
    };
}

text_schema!(Status, "Whether an account or client may be used.");
text_schema!(ClientKind, "The kind of client.");
text_schema!(Action, "What a grant allows on an item.");
text_schema!(Restriction, "A restriction that can run report-only.");
