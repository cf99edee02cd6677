/**
 * The TypeScript type of a JSON Schema written `as const`, for the small subset the
 * contracts use: objects (properties + required), arrays (items), enums, and the primitive
 * types, alone or as a list such as ['string', 'null']. A payload is then written once, as
 * the schema that the OpenAPI document serves, and its type follows from it.
 * Keywords that only narrow values (minimum, additionalProperties, …) do not change the type.
 */

type Primitive<T> = T extends 'string'
  ? string
  : T extends 'integer' | 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'null'
        ? null
        : never;

type Flatten<T> = { [K in keyof T]: T[K] } & {};

type ObjectOf<P, R extends PropertyKey> = Flatten<
  { -readonly [K in keyof P & R]: FromSchema<P[K]> } & { -readonly [K in Exclude<keyof P, R>]?: FromSchema<P[K]> }
>;

export type FromSchema<S> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { type: 'object'; properties: infer P }
    ? ObjectOf<P, S extends { required: readonly (infer R extends PropertyKey)[] } ? R : never>
    : S extends { type: 'array'; items: infer I }
      ? FromSchema<I>[]
      : S extends { type: readonly (infer T)[] }
        ? Primitive<T>
        : S extends { type: infer T }
          ? Primitive<T>
          : unknown;
