//! A valid component for the wrong interface: it exports a `mapper` with
//! another shape, so inflow must refuse it when it is dropped in the folder.

wit_bindgen::generate!({
    inline: r#"
        package inflow:not-mapping@0.1.0;

        interface mapper {
            transform: func(input: string) -> string;
        }

        world other {
            export mapper;
        }
    "#,
    world: "other",
});

struct Other;

impl exports::inflow::not_mapping::mapper::Guest for Other {
    fn transform(input: String) -> String {
        input
    }
}

export!(Other);
