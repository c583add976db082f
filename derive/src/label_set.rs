//! `#[derive(LabelSet)]`: a struct with named fields as a label set, its field names the label
//! names.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericParam};

use crate::attr::{self, Place};
use crate::errors::Errors;

/// The impl of `LabelSet` for `input`.
///
/// # Errors
/// Anything but a struct with named fields; type or const parameters; a bad attribute; a
/// label name the registry would refuse (`[a-zA-Z_][a-zA-Z0-9_]*`, not `le`, not starting with
/// `__`) or one given twice.
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named,
            Fields::Unnamed(unnamed) => {
                return Err(syn::Error::new_spanned(
                    unnamed,
                    "`#[derive(LabelSet)]` needs named fields, whose names are the label names; \
                     for positional labels key the family by a tuple and give `Family::new` the names",
                ));
            }
            Fields::Unit => {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "`#[derive(LabelSet)]` needs a struct with named fields; a unit struct has no labels \
                     (key the family by `()` instead)",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                "`#[derive(LabelSet)]` needs a struct with named fields; \
                 for an enum that writes itself as one label value, use `#[derive(LabelValue)]`",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "`#[derive(LabelSet)]` needs a struct with named fields, not a union",
            ));
        }
    };

    let mut errors = Errors::default();
    let krate = errors.ok(attr::parse(&input.attrs, Place::Struct)).and_then(|a| a.krate);
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::diag_core));

    // A family copies values in and names its key type with `'static`: lifetimes only.
    for param in &input.generics.params {
        let (what, name) = match param {
            GenericParam::Lifetime(_) => continue,
            GenericParam::Type(t) => ("type", t.ident.to_string()),
            GenericParam::Const(c) => ("const", c.ident.to_string()),
        };
        errors.push(syn::Error::new_spanned(
            param,
            format_args!(
                "`#[derive(LabelSet)]` takes lifetime parameters only, not {what} parameter `{name}`: \
                 give each field a concrete type that implements `LabelValue`"
            ),
        ));
    }

    let mut names: Vec<(String, Span)> = Vec::with_capacity(fields.named.len());
    let mut writes = Vec::with_capacity(fields.named.len());
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let rename = errors.ok(attr::parse(&field.attrs, Place::Field)).and_then(|a| a.rename);
        let (name, span) = match &rename {
            Some(lit) => (lit.value(), lit.span()),
            None => (ident.unraw().to_string(), ident.span()),
        };
        if let Some(why) = invalid_label_name(&name) {
            let fix = if rename.is_some() { "" } else { "; rename it with `#[diag(rename = \"…\")]`" };
            errors.push(syn::Error::new(span, format_args!("label name `{name}` {why}{fix}")));
        } else if names.iter().any(|(n, _)| *n == name) {
            errors.push(syn::Error::new(span, format_args!("label name `{name}` given to two fields")));
        }
        names.push((name, span));
        // Spanned at the field's type, so a type that is no `LabelValue` is reported there.
        let ty = &field.ty;
        writes.push(quote_spanned! {ty.span()=>
            #krate::labels::LabelWriter::label::<#ty>(__w, &self.#ident)?;
        });
    }
    errors.finish()?;

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // The same struct with every lifetime the lookup's.
    let lifetimes = input.generics.lifetimes().map(|_| quote!('__diag));
    let ref_generics = if input.generics.params.is_empty() { quote!() } else { quote!(<#(#lifetimes),*>) };
    let names = names.iter().map(|(n, _)| n);
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::labels::LabelSet for #ident #ty_generics #where_clause {
            type Ref<'__diag> = #ident #ref_generics;
            type Names = ();

            #[inline]
            fn names(_: &()) -> &[&'static str] {
                &[#(#names),*]
            }

            #[cfg_attr(not(target_os = "none"), inline(always))]
            fn write_labels<__W: #krate::labels::LabelWriter>(
                &self,
                __w: &mut __W,
            ) -> ::core::result::Result<(), #krate::SeriesError> {
                #(#writes)*
                ::core::result::Result::Ok(())
            }
        }
    })
}

/// Why the registry would refuse `name` as a label name, if it would.
fn invalid_label_name(name: &str) -> Option<&'static str> {
    let mut bytes = name.bytes();
    let valid = matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'));
    if !valid {
        Some("is invalid: use ASCII letters, digits and `_`, not starting with a digit")
    } else if name == "le" {
        Some("is reserved for histogram buckets")
    } else if name.starts_with("__") {
        Some("is reserved: names starting with `__` are Prometheus's own")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn expanded(input: DeriveInput) -> String {
        expand(&input).unwrap().to_string()
    }

    fn error(input: DeriveInput) -> Vec<String> {
        expand(&input).unwrap_err().into_iter().map(|e| e.to_string()).collect()
    }

    /// Spaces dropped, so the expected text reads like code.
    fn squeeze(s: &str) -> String {
        s.split_whitespace().collect()
    }

    #[test]
    fn named_fields_in_order_with_renames_and_every_lifetime_replaced() {
        let out = expanded(parse_quote! {
            struct Request<'x, 'y: 'x> where 'y: 'x {
                method: Method,
                #[diag(rename = "code")]
                status: u16,
                r#user: &'x str,
                tenant: &'y str,
            }
        });
        let out = squeeze(&out);
        assert!(
            out.contains(&squeeze(
                "impl<'x, 'y: 'x> ::diag_core::labels::LabelSet for Request<'x, 'y> where 'y: 'x {
                    type Ref<'__diag> = Request<'__diag, '__diag>;
                    type Names = ();"
            )),
            "{out}"
        );
        assert!(out.contains(&squeeze(r#"&["method", "code", "user", "tenant"]"#)), "{out}");
        let writes = [
            "::diag_core::labels::LabelWriter::label::<Method>(__w, &self.method)?;",
            "::diag_core::labels::LabelWriter::label::<u16>(__w, &self.status)?;",
            "::diag_core::labels::LabelWriter::label::<&'x str>(__w, &self.r#user)?;",
            "::diag_core::labels::LabelWriter::label::<&'y str>(__w, &self.tenant)?;",
            "::core::result::Result::Ok(())",
        ];
        assert!(out.contains(&squeeze(&writes.concat())), "{out}");
    }

    #[test]
    fn no_generics_and_another_crate_path() {
        let out = squeeze(&expanded(parse_quote! {
            #[diag(crate = "::diag::core")]
            struct Job { queue: Queue }
        }));
        assert!(out.contains(&squeeze("impl ::diag::core::labels::LabelSet for Job {")), "{out}");
        assert!(out.contains(&squeeze("type Ref<'__diag> = Job;")), "{out}");
        assert!(out.contains(&squeeze("::core::result::Result<(), ::diag::core::SeriesError>")), "{out}");
        let out = squeeze(&expanded(parse_quote!(
            struct Nothing {}
        )));
        assert!(out.contains(&squeeze("&[]")), "{out}");
    }

    #[test]
    fn type_and_const_parameters_are_refused_each() {
        assert_eq!(
            error(parse_quote!(
                struct S<'a, T: Copy, const N: usize> {
                    a: &'a str,
                    t: T,
                }
            )),
            [
                "`#[derive(LabelSet)]` takes lifetime parameters only, not type parameter `T`: \
                 give each field a concrete type that implements `LabelValue`",
                "`#[derive(LabelSet)]` takes lifetime parameters only, not const parameter `N`: \
                 give each field a concrete type that implements `LabelValue`",
            ]
        );
    }

    #[test]
    fn tuple_unit_enum_and_union_are_refused() {
        let tuple = error(parse_quote!(
            struct S(u16, &'static str);
        ));
        assert!(tuple[0].starts_with("`#[derive(LabelSet)]` needs named fields"), "{tuple:?}");
        let unit = error(parse_quote!(
            struct S;
        ));
        assert!(unit[0].contains("a unit struct has no labels"), "{unit:?}");
        let e = error(parse_quote!(
            enum E {
                A,
            }
        ));
        assert!(e[0].contains("use `#[derive(LabelValue)]`"), "{e:?}");
        let u = error(parse_quote!(union U { a: u8 }));
        assert!(u[0].ends_with("not a union"), "{u:?}");
    }

    #[test]
    fn label_names_the_registry_would_refuse_are_compile_errors() {
        assert_eq!(
            error(parse_quote! {
                struct S {
                    le: u16,
                    #[diag(rename = "__name__")]
                    a: u16,
                    #[diag(rename = "http-code")]
                    b: u16,
                    #[diag(rename = "le")]
                    c: u16,
                    r#type: u16,
                    #[diag(rename = "type")]
                    d: u16,
                    #[diag(rename = "9lives")]
                    e: u16,
                    café: u16,
                }
            }),
            [
                "label name `le` is reserved for histogram buckets; rename it with `#[diag(rename = \"…\")]`",
                "label name `__name__` is reserved: names starting with `__` are Prometheus's own",
                "label name `http-code` is invalid: use ASCII letters, digits and `_`, not starting with a digit",
                "label name `le` is reserved for histogram buckets",
                "label name `type` given to two fields",
                "label name `9lives` is invalid: use ASCII letters, digits and `_`, not starting with a digit",
                "label name `café` is invalid: use ASCII letters, digits and `_`, not starting with a digit; \
                 rename it with `#[diag(rename = \"…\")]`",
            ]
        );
    }

    #[test]
    fn attribute_errors_of_every_field_at_once() {
        assert_eq!(
            error(parse_quote! {
                #[diag(rename_all = "lowercase")]
                struct S {
                    #[diag(rename = "a", rename = "b")]
                    a: u16,
                    #[diag(skip)]
                    b: u16,
                }
            }),
            [
                "unknown `diag` attribute `rename_all` here; expected `crate = \"path\"` (on a struct deriving `LabelSet`)",
                "`rename` given twice",
                "unknown `diag` attribute `skip` here; expected `rename = \"label_name\"` (on a field)",
            ]
        );
    }
}
