//! The `#[diag(...)]` helper attribute: what each place takes, parsed with errors that name
//! the key.

use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Path};

use crate::case::Case;
use crate::errors::Errors;

/// Where a `#[diag(...)]` attribute stands; each place takes its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// On a struct deriving `LabelSet`: `crate`.
    Struct,
    /// On one of its fields: `rename`.
    Field,
    /// On an enum deriving `LabelValue`: `crate`, `rename_all`.
    Enum,
    /// On one of its variants: `rename`.
    Variant,
}

impl Place {
    /// The keys this place takes, as an error message lists them.
    fn expected(self) -> &'static str {
        match self {
            Place::Struct => "`crate = \"path\"` (on a struct deriving `LabelSet`)",
            Place::Field => "`rename = \"label_name\"` (on a field)",
            Place::Enum => "`crate = \"path\"` or `rename_all = \"…\"` (on an enum deriving `LabelValue`)",
            Place::Variant => "`rename = \"value\"` (on a variant)",
        }
    }

    fn takes(self, key: &str) -> bool {
        matches!(
            (self, key),
            (Place::Struct | Place::Enum, "crate")
                | (Place::Field | Place::Variant, "rename")
                | (Place::Enum, "rename_all")
        )
    }
}

/// What the `#[diag(...)]` attributes of one place said.
#[derive(Default)]
pub(crate) struct Attrs {
    /// `crate = "path"`: where the core's items are (a facade re-exporting it).
    pub(crate) krate: Option<Path>,
    /// `rename = "…"`: the label name (a field) or value (a variant).
    pub(crate) rename: Option<LitStr>,
    /// `rename_all = "…"`: how variant names become values.
    pub(crate) rename_all: Option<Case>,
}

/// Parses every `#[diag(...)]` among `attrs` for `place`; other attributes are left alone.
///
/// # Errors
/// An unknown or misplaced key, a key given twice, a value that is not a string literal, a
/// `crate` path or `rename_all` case that does not parse.
pub(crate) fn parse(attrs: &[Attribute], place: Place) -> syn::Result<Attrs> {
    let mut out = Attrs::default();
    let mut errors = Errors::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("diag")) {
        let parsed = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            if !place.takes(&key) {
                let path = &meta.path;
                let shown = if key.is_empty() { quote::quote!(#path).to_string().replace(' ', "") } else { key };
                return Err(
                    meta.error(format_args!("unknown `diag` attribute `{shown}` here; expected {}", place.expected()))
                );
            }
            let lit: LitStr = meta.value()?.parse()?;
            let duplicate = || syn::Error::new(meta.path.span(), format_args!("`{key}` given twice"));
            match key.as_str() {
                "crate" => {
                    let path = lit.parse::<Path>().map_err(|_| {
                        syn::Error::new(
                            lit.span(),
                            format_args!("`crate` takes a path such as \"::diag\", not {:?}", lit.value()),
                        )
                    })?;
                    if out.krate.replace(path).is_some() {
                        return Err(duplicate());
                    }
                }
                "rename" => {
                    if out.rename.replace(lit).is_some() {
                        return Err(duplicate());
                    }
                }
                _ => {
                    let case = Case::from_name(&lit.value()).ok_or_else(|| {
                        syn::Error::new(
                            lit.span(),
                            format_args!(
                                "unknown `rename_all` case {:?}; expected one of {}",
                                lit.value(),
                                Case::NAMES
                            ),
                        )
                    })?;
                    if out.rename_all.replace(case).is_some() {
                        return Err(duplicate());
                    }
                }
            }
            Ok(())
        });
        errors.ok(parsed);
    }
    errors.finish().map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn err(attrs: &[Attribute], place: Place) -> String {
        match parse(attrs, place) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_place_takes_its_keys() {
        let a = parse(&[parse_quote!(#[diag(crate = "::diag")]), parse_quote!(#[doc = "x"])], Place::Struct).unwrap();
        let krate = a.krate.unwrap();
        assert_eq!(quote::quote!(#krate).to_string().replace(' ', ""), "::diag");
        let a = parse(&[parse_quote!(#[diag(rename = "code")])], Place::Field).unwrap();
        assert_eq!(a.rename.unwrap().value(), "code");
        let a = parse(&[parse_quote!(#[diag(crate = "my::core", rename_all = "kebab-case")])], Place::Enum).unwrap();
        assert_eq!(a.rename_all, Some(Case::Kebab));
        assert!(a.krate.is_some());
        let a = parse(&[parse_quote!(#[serde(rename = "x")])], Place::Variant).unwrap();
        assert!(a.rename.is_none(), "other attributes are not ours");
    }

    #[test]
    fn misplaced_unknown_and_repeated_keys_are_named() {
        assert_eq!(
            err(&[parse_quote!(#[diag(rename = "x")])], Place::Struct),
            "unknown `diag` attribute `rename` here; expected `crate = \"path\"` (on a struct deriving `LabelSet`)"
        );
        assert_eq!(
            err(&[parse_quote!(#[diag(rename_all = "lowercase")])], Place::Field),
            "unknown `diag` attribute `rename_all` here; expected `rename = \"label_name\"` (on a field)"
        );
        assert!(err(&[parse_quote!(#[diag(skip)])], Place::Variant).contains("unknown `diag` attribute `skip`"));
        assert!(err(&[parse_quote!(#[diag(a::b = "x")])], Place::Variant).contains("unknown `diag` attribute `a::b`"));
        assert_eq!(
            err(&[parse_quote!(#[diag(rename = "a")]), parse_quote!(#[diag(rename = "b")])], Place::Field),
            "`rename` given twice"
        );
        assert_eq!(
            err(&[parse_quote!(#[diag(rename_all = "camelCase")])], Place::Enum),
            format!("unknown `rename_all` case \"camelCase\"; expected one of {}", Case::NAMES)
        );
        assert_eq!(
            err(&[parse_quote!(#[diag(crate = "not a path")])], Place::Enum),
            "`crate` takes a path such as \"::diag\", not \"not a path\""
        );
        assert!(err(&[parse_quote!(#[diag(rename = code)])], Place::Field).contains("expected string literal"));
        assert!(!err(&[parse_quote!(#[diag])], Place::Field).is_empty());
    }
}
