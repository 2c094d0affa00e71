/**
 * Request and response schemas of the serving API, in TypeBox: the one source of validation (fastify's ajv compiles
 * them) and of the handlers' types (`Static<typeof X>` through the TypeBox type provider). Limits live here: ids up
 * to 128 characters, k up to {@link MAX_K}, up to {@link MAX_ITEMS} items per request, bodies up to
 * {@link BODY_LIMIT} bytes.
 */
import { Type, type Static } from 'typebox';

/** Largest `k` of `/v1/recommend`. */
export const MAX_K = 100;
/** Most item ids in one request (`exclude`, `itemIds`). */
export const MAX_ITEMS = 1000;
/** Most item ids in a request's `history`. */
export const MAX_HISTORY = 500;
/** Longest `/v1/search` query in characters (UTF-16 code units, as JSON Schema counts). */
export const MAX_QUERY_CHARS = 512;
/** Largest request body in bytes. */
export const BODY_LIMIT = 64 * 1024;
/** Feedback events. */
export const FEEDBACK_EVENTS = ['click', 'add_to_cart', 'purchase', 'dismiss'] as const;
export type FeedbackEvent = (typeof FEEDBACK_EVENTS)[number];

const Id = Type.String({ minLength: 1, maxLength: 128 });
const Variant = Type.Enum(['stable', 'canary']);

/** The model that answered. */
export const ModelInfo = Type.Object({ version: Type.String(), variant: Variant, precision: Type.String() });
export type ModelInfo = Static<typeof ModelInfo>;

const Scored = Type.Array(Type.Object({ itemId: Type.String(), score: Type.Union([Type.Number(), Type.Null()]) }));

/** Every 4xx and 5xx answer. */
export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String(), requestId: Type.String() });
const errors = { '4xx': ErrorBody, '5xx': ErrorBody } as const;

export const RecommendBody = Type.Object(
  {
    userId: Id,
    k: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_K, default: 10 })),
    /** Item ids never to return. */
    exclude: Type.Optional(Type.Array(Id, { maxItems: MAX_ITEMS })),
    /**
     * The user's recent items, oldest first (e.g. a session the bundle never saw): fed to graphs that take a
     * `history` input instead of the bundle's stored history, and left out of the answer unless `includeSeen`.
     */
    history: Type.Optional(Type.Array(Id, { maxItems: MAX_HISTORY })),
    /** Also return items the user already interacted with (the bundle's history and `history`). @default false */
    includeSeen: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);
export type RecommendBody = Static<typeof RecommendBody>;

export const RecommendResponse = Type.Object({
  requestId: Type.String(),
  model: ModelInfo,
  userKnown: Type.Boolean(),
  fallback: Type.Union([Type.String(), Type.Null()]),
  items: Scored,
  unknownItems: Type.Array(Type.String()),
  /** How many items the user already had were left out (0 with `includeSeen`). */
  seenExcluded: Type.Integer(),
  /** Signed token to send back with `/v1/feedback` (any replica of the fleet accepts it). */
  feedbackToken: Type.String(),
});

export const recommendSchema = { body: RecommendBody, response: { 200: RecommendResponse, ...errors } } as const;

export const SearchBody = Type.Object(
  {
    /** The query text, 1..{@link MAX_QUERY_CHARS} characters, not only spaces (the model cuts it to its token limit). */
    query: Type.String({ minLength: 1, maxLength: MAX_QUERY_CHARS }),
    k: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_K, default: 10 })),
    /**
     * Who searches: the sticky canary routing and the stats buckets follow it (send it for a consistent experience);
     * without it each request is routed and bucketed by its request id.
     */
    userId: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export type SearchBody = Static<typeof SearchBody>;

export const SearchResponse = Type.Object({
  requestId: Type.String(),
  model: ModelInfo,
  /**
   * Best first: the item id and its score. The score is what the model ranks by: for a hybrid model (a bundle whose
   * dense weight for the served variant is below 1) the hybrid score in [0, 1], `w * dense' + (1 - w) * bm25'`
   * (dense min-max normalised over the catalogue, BM25 divided by its maximum); for a dense model the cosine
   * similarity of the query and the item text.
   */
  items: Type.Array(Type.Object({ itemId: Type.String(), score: Type.Number() })),
  /** Whether the query was longer than the model's token limit and was cut. */
  truncated: Type.Boolean(),
  /** Signed token to send back with `/v1/feedback`: counted toward search CTR (apart from recommendations). */
  feedbackToken: Type.String(),
});

export const searchSchema = { body: SearchBody, response: { 200: SearchResponse, ...errors } } as const;

export const ScoreBody = Type.Object(
  { userId: Id, itemIds: Type.Array(Id, { minItems: 1, maxItems: MAX_ITEMS }) },
  { additionalProperties: false },
);
export type ScoreBody = Static<typeof ScoreBody>;

export const scoreSchema = {
  body: ScoreBody,
  response: {
    200: Type.Object({
      requestId: Type.String(),
      model: ModelInfo,
      userKnown: Type.Boolean(),
      scores: Scored,
      unknownItems: Type.Array(Type.String()),
      /** Feedback on a score response is counted apart (never toward recommendation CTR). */
      feedbackToken: Type.String(),
    }),
    ...errors,
  },
} as const;

export const FeedbackBody = Type.Object(
  {
    /** `feedbackToken` of the response: any replica of the fleet counts it (preferred). */
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384 })),
    /** `requestId` of a recent response of this replica (the older way; unknown elsewhere). */
    requestId: Type.Optional(Id),
    itemId: Id,
    event: Type.Enum([...FEEDBACK_EVENTS]),
  },
  { additionalProperties: false },
);
export type FeedbackBody = Static<typeof FeedbackBody>;

export const FeedbackResponse = Type.Object({
  requestId: Type.String(),
  model: ModelInfo,
  accepted: Type.Boolean(),
  /** False for a repeat of feedback already counted (client retries are safe), or an expired response. */
  counted: Type.Boolean(),
  /** What it counts toward: recommendation CTR, search CTR, or score feedback (each kept apart). */
  countedAs: Type.Enum(['recommend', 'score', 'search']),
  /** Why it was not counted: `duplicate` or `expired`. */
  reason: Type.Optional(Type.String()),
  /** The replica that counted it, when not the one that served the response. */
  countedBy: Type.Optional(Type.String()),
});
export type FeedbackResponse = Static<typeof FeedbackResponse>;

export const feedbackSchema = { body: FeedbackBody, response: { 200: FeedbackResponse, ...errors } } as const;

const Slot = Type.Object(
  {
    version: Id,
    bundlePath: Type.String({ minLength: 1, maxLength: 4096 }),
    precision: Type.Enum(['fp32', 'int8']),
    bundleId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._-]+$' })),
  },
  { additionalProperties: false },
);

export const FleetPatchBody = Type.Object(
  {
    stable: Type.Optional(Type.Union([Slot, Type.Null()])),
    canary: Type.Optional(Type.Union([Slot, Type.Null()])),
    canaryWeight: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);
export type FleetPatchBody = Static<typeof FleetPatchBody>;
export const fleetPatchSchema = { body: FleetPatchBody } as const;

export const FaultBody = Type.Object(
  {
    variant: Variant,
    abortRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    abortStatus: Type.Optional(Type.Integer({ minimum: 500, maximum: 599 })),
    delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
    delayRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    randomItemsRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);
export type FaultBody = Static<typeof FaultBody>;
export const faultSchema = { body: FaultBody } as const;

export const StatsQuery = Type.Object(
  {
    /**
     * Epoch ms: count only requests and impressions served before it (aligned down to the replica's time slot),
     * with all their clicks so far.
     */
    servedBefore: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
  },
  { additionalProperties: false },
);
export type StatsQuery = Static<typeof StatsQuery>;
export const statsSchema = { querystring: StatsQuery } as const;
