/**
 * Request and response schemas of the serving API (JSON Schema, validated by fastify's ajv). Limits are here:
 * ids up to 128 characters, k up to {@link MAX_K}, up to {@link MAX_ITEMS} items per request.
 */
export const MAX_K = 100;
export const MAX_ITEMS = 1000;
/** Largest request body in bytes. */
export const BODY_LIMIT = 64 * 1024;
export const FEEDBACK_EVENTS = ['click', 'add_to_cart', 'purchase', 'dismiss'] as const;
export type FeedbackEvent = (typeof FEEDBACK_EVENTS)[number];

const id = { type: 'string', minLength: 1, maxLength: 128 } as const;

const modelInfo = {
  type: 'object',
  required: ['version', 'variant', 'precision'],
  properties: {
    version: { type: 'string' },
    variant: { type: 'string', enum: ['stable', 'canary'] },
    precision: { type: 'string' },
  },
} as const;

const scored = {
  type: 'array',
  items: {
    type: 'object',
    required: ['itemId', 'score'],
    properties: { itemId: { type: 'string' }, score: { type: ['number', 'null'] } },
  },
} as const;

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' } },
} as const;

export interface RecommendBody {
  userId: string;
  k?: number;
  exclude?: string[];
}
export interface ScoreBody {
  userId: string;
  itemIds: string[];
}
export interface FeedbackBody {
  requestId: string;
  itemId: string;
  event: FeedbackEvent;
}

export const recommendSchema = {
  body: {
    type: 'object',
    required: ['userId'],
    additionalProperties: false,
    properties: {
      userId: id,
      k: { type: 'integer', minimum: 1, maximum: MAX_K, default: 10 },
      exclude: { type: 'array', items: id, maxItems: MAX_ITEMS },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['requestId', 'model', 'userKnown', 'items', 'unknownItems'],
      properties: {
        requestId: { type: 'string' },
        model: modelInfo,
        userKnown: { type: 'boolean' },
        fallback: { type: ['string', 'null'] },
        items: scored,
        unknownItems: { type: 'array', items: { type: 'string' } },
      },
    },
    '4xx': errorBody,
    '5xx': errorBody,
  },
} as const;

export const scoreSchema = {
  body: {
    type: 'object',
    required: ['userId', 'itemIds'],
    additionalProperties: false,
    properties: { userId: id, itemIds: { type: 'array', items: id, minItems: 1, maxItems: MAX_ITEMS } },
  },
  response: {
    200: {
      type: 'object',
      required: ['requestId', 'model', 'userKnown', 'scores', 'unknownItems'],
      properties: {
        requestId: { type: 'string' },
        model: modelInfo,
        userKnown: { type: 'boolean' },
        scores: scored,
        unknownItems: { type: 'array', items: { type: 'string' } },
      },
    },
    '4xx': errorBody,
    '5xx': errorBody,
  },
} as const;

export const feedbackSchema = {
  body: {
    type: 'object',
    required: ['requestId', 'itemId', 'event'],
    additionalProperties: false,
    properties: { requestId: id, itemId: id, event: { type: 'string', enum: FEEDBACK_EVENTS } },
  },
  response: {
    200: {
      type: 'object',
      required: ['requestId', 'model', 'accepted'],
      properties: { requestId: { type: 'string' }, model: modelInfo, accepted: { type: 'boolean' } },
    },
    '4xx': errorBody,
    '5xx': errorBody,
  },
} as const;

const slot = {
  type: ['object', 'null'],
  required: ['version', 'bundlePath', 'precision'],
  additionalProperties: false,
  properties: {
    version: id,
    bundlePath: { type: 'string', minLength: 1, maxLength: 4096 },
    precision: { type: 'string', enum: ['fp32', 'int8'] },
  },
} as const;

export const fleetPatchSchema = {
  body: {
    type: 'object',
    required: ['reason'],
    additionalProperties: false,
    properties: {
      stable: slot,
      canary: slot,
      canaryWeight: { type: 'number', minimum: 0, maximum: 100 },
      reason: { type: 'string', minLength: 1, maxLength: 500 },
    },
  },
} as const;

export const faultSchema = {
  body: {
    type: 'object',
    required: ['variant'],
    additionalProperties: false,
    properties: {
      variant: { type: 'string', enum: ['stable', 'canary'] },
      abortRate: { type: 'number', minimum: 0, maximum: 1 },
      abortStatus: { type: 'integer', minimum: 500, maximum: 599 },
      delayMs: { type: 'integer', minimum: 0, maximum: 60_000 },
      delayRate: { type: 'number', minimum: 0, maximum: 1 },
    },
  },
} as const;
