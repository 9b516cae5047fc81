//! Code generation: the `<Name>Fields` struct, the `SharedType` and `SharedStruct`
//! impls, and the compile-time checks. Every path is absolute (`::core::…`,
//! `::sharedctypes::__private::…`), so user items named `Result`, `Shared` or
//! `Option`, or `#![no_implicit_prelude]`, cannot change its meaning.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{DeriveInput, GenericParam, Member, Type};

use crate::ast::{Input, Style};
use crate::valid;

/// The whole expansion; or, for bad input, the errors and the per-field `SharedType`
/// checks of the fields that were not rejected, so that every bad field is reported
/// in one build. No impl is emitted for bad input: a stub would need the struct to be
/// `Copy + Send + Sync`, which a struct with a pointer field is not, and would add
/// errors of its own.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let model = match Input::from_syn(input) {
        Ok(model) => model,
        Err(e) => return e.to_compile_error(),
    };
    let report = valid::check(&model);
    match report.error {
        None => expand(&model),
        Some(error) => {
            let mut out = error.to_compile_error();
            // With a lifetime parameter the field checks would only add noise (every
            // `SharedType` is `'static`).
            if model.generics.lifetimes().next().is_none() {
                let ok = model
                    .fields
                    .iter()
                    .zip(&report.field_ok)
                    .filter(|(_, ok)| **ok)
                    .map(|(f, _)| f.ty);
                let checks = field_checks(&model, ok);
                let allow_lints = allow_lints();
                out.extend(quote! {
                    #allow_lints
                    const _: () = { #checks };
                });
            }
            out
        }
    }
}

/// `T: SharedType` for each type parameter, plus the user's own where-clause.
fn base_predicates(input: &Input<'_>) -> Vec<TokenStream> {
    let mut base: Vec<TokenStream> = input
        .generics
        .where_clause
        .iter()
        .flat_map(|w| w.predicates.iter().map(ToTokens::to_token_stream))
        .collect();
    for param in &input.generics.params {
        if let GenericParam::Type(t) = param {
            // Spanned at the parameter: `Pair<*const u8>` is then explained by a note
            // pointing at `T` in `struct Pair<T>`.
            let t = &t.ident;
            base.push(quote_spanned!(t.span()=> #t: ::sharedctypes::__private::SharedType));
        }
    }
    base
}

/// Functions that require `F: SharedType` once per field type, at the field type's span:
/// a field whose type is not `SharedType` gets exactly one error, at the field, worded
/// by `SharedType`'s `#[diagnostic::on_unimplemented]`. (The other uses of the field
/// types, in the impls' bounds, are higher-ranked and never reported.) A bound on a
/// function is used rather than naming `<F as SharedType>::LAYOUT`, which would also
/// report each of `SharedType`'s supertraits (`Send`, `Sync`) separately.
fn field_checks<'a>(input: &Input<'_>, tys: impl Iterator<Item = &'a Type>) -> TokenStream {
    let (impl_generics, _, _) = input.generics.split_for_impl();
    let base = base_predicates(input);
    let checks = tys.map(|ty| {
        // The path is written here, not interpolated, so that it carries the field's
        // span and the error points at the field.
        quote_spanned!(ty.span()=> __field_must_be_a_shared_type::<#ty>();)
    });
    quote! {
        fn __field_must_be_a_shared_type<__T: ::sharedctypes::__private::SharedType>() {}

        fn __check_fields #impl_generics () where #(#base,)* {
            #(#checks)*
        }
    }
}

/// Generated code is not the user's to lint: the helpers are never called, and the
/// bounds repeat the user's own (for pedantic and nursery lints too).
fn allow_lints() -> TokenStream {
    quote!(#[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)])
}

fn private() -> TokenStream {
    quote!(::sharedctypes::__private)
}

fn expand(input: &Input<'_>) -> TokenStream {
    let p = private();
    let allow_lints = allow_lints();
    let ident = input.ident;
    let vis = input.vis;
    let name = input.name();
    let fields_ident = format_ident!("{}Fields", ident.unraw(), span = ident.span());
    let generics = input.generics;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let self_ty = quote!(#ident #ty_generics);
    let fields_ty = quote!(#fields_ident #ty_generics);

    // Bounds on the impls: the user's, `T: SharedType` for each type parameter, and
    // `for<'__shared> F: SharedType` for each field type and `for<'__shared> Self: Copy`.
    // The higher-ranked form keeps a bound on a concrete type (`bool: SharedType`) from
    // being checked at the impl (which would report it again at each impl); a bad field
    // is reported once, by `field_checks`, at the field's own span, and a missing `Copy`
    // once, by `__check_copy` below.
    let mut predicates = base_predicates(input);
    for f in &input.fields {
        let ty = f.ty;
        predicates.push(quote!(for<'__shared> #ty: #p::SharedType));
    }
    predicates.push(quote!(for<'__shared> #self_ty: #p::core::marker::Copy));
    let where_all = quote!(where #(#predicates,)*);
    let base = base_predicates(input);
    let field_checks = field_checks(input, input.fields.iter().map(|f| f.ty));
    let copy_check = quote_spanned!(ident.span()=> __shared_struct_must_be_copy::<#self_ty>(););

    // The companion struct. Each cell has the visibility of its field (see the derive's
    // docs): `Shared<Name>` must not open a field that `Name` keeps private.
    let align = input
        .repr
        .align
        .as_ref()
        .map(|n| quote!(#[repr(align(#n))]));
    let struct_doc = format!(
        "The fields of [`{name}`] in shared memory: `Shared<{name}>` derefs to this, one \
         `Shared` cell per field. Generated by `#[derive(SharedStruct)]`."
    );
    let cells = input.fields.iter().map(|f| {
        let fvis = f.vis;
        let ty = f.ty;
        let doc = format!("The `Shared` cell of field `{}`.", f.name);
        match &f.member {
            Member::Named(id) => quote!(#[doc = #doc] #fvis #id: #p::Shared<#ty>),
            Member::Unnamed(_) => quote!(#[doc = #doc] #fvis #p::Shared<#ty>),
        }
    });
    let attrs = quote! {
        #[doc = #struct_doc]
        #[repr(C)]
        #align
        #allow_lints
        #[allow(non_camel_case_types)]
    };
    let fields_struct = match input.style {
        Style::Named | Style::Unit => quote! {
            #attrs
            #vis struct #fields_ident #generics #where_clause { #(#cells,)* }
        },
        Style::Tuple => quote! {
            #attrs
            #vis struct #fields_ident #generics (#(#cells,)*) #where_clause;
        },
    };

    // Layout description.
    let field_layouts = input.fields.iter().map(|f| {
        let (member, fname, ty) = (&f.member, &f.name, f.ty);
        quote! {
            #p::FieldLayout {
                name: #fname,
                offset: #p::core::mem::offset_of!(#self_ty, #member),
                layout: &<#ty as #p::SharedType>::LAYOUT,
            }
        }
    });

    // Layout checks: `Fields` is provably the same memory as the struct. The messages
    // name the likely cause: a `repr` the derive could not see, added by an attribute
    // macro written after `#[derive(SharedStruct)]` (which expands after it).
    let unseen = format!(
        "`{name}` has a `repr` that `#[derive(SharedStruct)]` did not see, probably \
         `packed` or `align(N)` added by an attribute macro written after the derive \
         (such a macro expands after it); write that macro before the derive, and do not \
         pack a shared struct"
    );
    let offset_checks = input.fields.iter().map(|f| {
        let member = &f.member;
        let msg = format!(
            "sharedctypes: field `{}` of `{name}Fields` is not at the offset of `{name}`'s; \
             {unseen}",
            f.name
        );
        quote! {
            #p::core::assert!(
                #p::core::mem::offset_of!(#self_ty, #member)
                    == #p::core::mem::offset_of!(#fields_ty, #member),
                #msg
            );
        }
    });
    let size_msg = format!("sharedctypes: `{name}Fields` and `{name}` differ in size; {unseen}");
    let align_msg =
        format!("sharedctypes: `{name}Fields` and `{name}` differ in alignment; {unseen}");
    let layout_check = quote! {{
        #p::core::assert!(
            #p::core::mem::size_of::<#self_ty>() == #p::core::mem::size_of::<#fields_ty>(),
            #size_msg
        );
        #p::core::assert!(
            #p::core::mem::align_of::<#self_ty>() == #p::core::mem::align_of::<#fields_ty>(),
            #align_msg
        );
        #(#offset_checks)*
    }};
    // A non-generic struct is checked where it is defined. A generic one is checked for
    // each instantiation that is used: `LAYOUT`, `__load`, `__store` and `Shared<S>`'s
    // `Deref` each evaluate `__LAYOUT_CHECK` (a post-monomorphization error: `cargo
    // build` reports it, `cargo check` may not).
    let (eager_check, check_this_instantiation) = if generics.params.is_empty() {
        (quote!(const _: () = #layout_check;), quote!())
    } else {
        (
            quote!(),
            quote!(let () = <Self as #p::SharedStruct>::__LAYOUT_CHECK;),
        )
    };

    // Every field, borrowed in place, in a function that is never called. A reference
    // to a field of a packed struct is a hard error (E0793) unless the field's
    // alignment is known not to exceed the packing, so a `#[repr(packed)]` that the
    // derive cannot see (see above) fails to compile at the offending field, for
    // generic structs too and under `cargo check`. A packing that moves no field (all
    // fields of alignment 1, or `packed(2)` around `u16`s) compiles: the layout is then
    // that of `repr(C)`, every field aligned.
    let field_refs = input.fields.iter().map(|f| {
        let member = match &f.member {
            Member::Named(id) => Member::Named(id.clone()),
            Member::Unnamed(i) => Member::Unnamed(syn::Index {
                index: i.index,
                span: f.span,
            }),
        };
        quote_spanned!(f.span=> let _ = &__shared_struct.#member;)
    });

    let members: Vec<_> = input.fields.iter().map(|f| &f.member).collect();
    let tys: Vec<_> = input.fields.iter().map(|f| f.ty).collect();

    // The impl headers carry the struct name's span rather than the derive's, so that
    // a failed bound at a use (`RawValue<Pair<*const u8>>`) points at the struct, and
    // rustc does not suggest writing the (unsafe, derive-only) impl by hand.
    let unsafe_impl = quote_spanned!(ident.span()=> unsafe impl);
    let shared_type = quote_spanned!(ident.span()=> ::sharedctypes::__private::SharedType);
    let shared_struct = quote_spanned!(ident.span()=> ::sharedctypes::__private::SharedStruct);

    quote! {
        #fields_struct

        #[doc(hidden)]
        #allow_lints
        const _: () = {
            #[automatically_derived]
            #[allow(clippy::undocumented_unsafe_blocks)]
            // SAFETY:
            // - no pointer, no resource, every bit pattern valid: the bounds require
            //   every field type to be `SharedType`, which promises both, and padding
            //   bytes are never read (`valid` rejecting pointer types by name only
            //   gives a better message);
            // - loads and stores go field by field through the fields' own impls, at
            //   `addr_of!((*src).field)`; each field is aligned within an aligned
            //   `Self` because `__fields_must_be_aligned` (E0793) rejects any packing
            //   that could misalign one (`repr(C)` itself is checked only by syntax);
            // - `LAYOUT` is computed from `size_of`, `align_of` and `offset_of!` of
            //   `Self`, so it describes `Self` whatever its `repr`.
            #unsafe_impl #impl_generics #shared_type for #self_ty #where_all {
                const LAYOUT: #p::TypeLayout = {
                    #check_this_instantiation
                    #p::TypeLayout::structure(
                        #name,
                        #p::core::mem::size_of::<#self_ty>(),
                        #p::core::mem::align_of::<#self_ty>(),
                        &[#(#field_layouts,)*],
                    )
                };

                #[inline]
                unsafe fn __load(src: *const Self) -> Self {
                    #check_this_instantiation
                    // SAFETY: the caller guarantees `src` is valid and aligned for `Self`
                    // (and accessed only atomically); every field is aligned within an
                    // aligned `Self` (see the impl's SAFETY), so each field's address is
                    // valid and aligned for the field.
                    unsafe {
                        Self {
                            #(#members: <#tys as #p::SharedType>::__load(
                                #p::core::ptr::addr_of!((*src).#members)
                            ),)*
                        }
                    }
                }

                #[inline]
                unsafe fn __store(dst: *mut Self, value: Self) {
                    #check_this_instantiation
                    let _ = &value;
                    // SAFETY: as in `__load`, for writes.
                    unsafe {
                        #(<#tys as #p::SharedType>::__store(
                            #p::core::ptr::addr_of_mut!((*dst).#members),
                            value.#members,
                        );)*
                    }
                }
            }

            #[automatically_derived]
            // SAFETY: `Fields` is `repr(C)` with one `Shared<F>` (the layout of `F`) per
            // field, in the same order, with the same `align`; `__LAYOUT_CHECK` asserts
            // that size, alignment and every field offset are equal. It is evaluated
            // here for a non-generic struct, and for each instantiation of a generic one
            // by every path that reinterprets or accesses its memory (`Deref`, `__load`,
            // `__store`, `LAYOUT`), so no such path compiles for a differing layout.
            #unsafe_impl #impl_generics #shared_struct for #self_ty #where_all {
                type Fields = #fields_ty;
                const __LAYOUT_CHECK: () = #layout_check;
            }

            #eager_check

            #field_checks

            fn __fields_must_be_aligned #impl_generics (__shared_struct: &#self_ty)
            where #(#base,)*
            {
                #(#field_refs)*
            }

            fn __shared_struct_must_be_copy<__T: #p::core::marker::Copy>() {}

            fn __check_copy #impl_generics () where #(#base,)* {
                #copy_check
            }
        };
    }
}
