// Copyright 2026 the wirestream authors. MIT license.
/**
 * wirestream: Ktor's WebSockets feature and CIO engine for the web platform, with every
 * protocol piece a WHATWG stream.
 *
 * This release holds the RFC 6455 core: the frame codec, messages, `pinger`/`ponger`,
 * sessions over any byte duplex, the handshake helpers and a client; the wire engine
 * (`httpServer`, `startConnectionPipeline`); streaming multipart bodies (`parseMultipart`,
 * `readFormData`, `savePart`); range requests (`parseRange`, `writeMultipleRanges`,
 * `serveRanges`, `serveFile`); and the application layer: `Application`, plugins, routing,
 * the `WebSockets` plugin and `embeddedServer` on the native and wire engines.
 *
 * @example A frame round trip
 * ```ts
 * import { Frame, FrameDecoder, FrameEncoder } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const bytes: Uint8Array[] = [];
 * new FrameEncoder({ role: "client" }).encode(Frame.binary(Uint8Array.of(1, 2, 3)), { enqueue: (c) => bytes.push(c) });
 * const frames: Frame[] = [];
 * new FrameDecoder({ role: "server" }).push(bytes[0]!, { enqueue: (f) => frames.push(f) });
 * assert.deepEqual([...frames[0]!.payload], [1, 2, 3]);
 * ```
 *
 * @module
 */

// WebSocket frames
export {
  CloseCode,
  type ClosePayload,
  Frame,
  isValidCloseCode,
  Opcode,
  readClosePayload,
} from "./lib/websocket/frame.ts";
export { MessageTooBigError, WebSocketError } from "./lib/websocket/error.ts";
export {
  type AllowedRsv,
  DEFAULT_MAX_FRAME_SIZE,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameDecoderStream,
  type FrameSink,
  type Role,
} from "./lib/websocket/decoder.ts";
export {
  type ByteSink,
  FrameEncoder,
  type FrameEncoderOptions,
  FrameEncoderStream,
} from "./lib/websocket/encoder.ts";
export { mask } from "./lib/websocket/mask.ts";

// WebSocket messages, ping and pong
export {
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeMessage,
  type EncodeMessageOptions,
  type FrameSinkLike,
  type Message,
  MessageDecoder,
  type MessageDecoderOptions,
  type MessageSink,
  MessageStream,
} from "./lib/websocket/message.ts";
export { pinger, type PingerOptions, ponger } from "./lib/websocket/ping.ts";

// WebSocket sessions
export {
  type CloseInfo,
  type MessageSession,
  RawWebSocketSession,
  type RawWebSocketSessionOptions,
  type Transport,
  type TransportReady,
  WebSocketSession,
  type WebSocketSessionOptions,
} from "./lib/websocket/session.ts";

// WebSocket handshake and client
export {
  acceptKey,
  checkUpgradeRequest,
  type ExtensionOffer,
  parseExtensions,
  parseProtocols,
  selectProtocol,
  type UpgradeInfo,
  type UpgradeRequestLike,
  type UpgradeValidationOptions,
  validateUpgradeRequest,
  WEBSOCKET_GUID,
} from "./lib/websocket/handshake.ts";
export {
  type AcceptedWebSocket,
  acceptWebSocket,
  type AcceptWebSocketOptions,
} from "./lib/websocket/accept.ts";
export { connectWebSocket, type ConnectWebSocketOptions } from "./lib/websocket/client.ts";

export {
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
  type WebSocketUpgrade,
} from "./lib/websocket/upgrade.ts";
export {
  NativeWebSocketSession,
  type NativeWebSocketSessionOptions,
} from "./lib/websocket/native.ts";

// HTTP: the wire engine
export { HttpError, type HttpErrorOptions } from "./lib/http/error.ts";
export { STATUS_TEXT } from "./lib/http/status.ts";
export { BufferedReader, type BufferedReaderOptions } from "./lib/http/reader.ts";
export {
  findHeadEnd,
  hasToken,
  type HeadLimits,
  parseRequestHead,
  parseResponseHead,
  readRequestHead,
  readResponseHead,
  type RequestHead,
  type ResponseHead,
} from "./lib/http/head.ts";
export {
  ChunkedDecoder,
  type ChunkedDecoderOptions,
  ChunkedDecoderStream,
  type ChunkedEncoderOptions,
  ChunkedEncoderStream,
  type DataSink,
  decodeChunked,
  type DecodedChunked,
} from "./lib/http/chunked.ts";
export {
  type ConnectionPipeline,
  type ConnectionPipelineOptions,
  type Handler,
  type HandlerInfo,
  type PeerAddress,
  startConnectionPipeline,
} from "./lib/http/pipeline.ts";
export { type HttpServer, httpServer, type HttpServerOptions } from "./lib/http/server.ts";

// HTTP: range requests
export {
  type ByteRange,
  DEFAULT_MAX_RANGES,
  parseRange,
  type ParseRangeOptions,
  type RangeIgnoredReason,
  type RangeResult,
} from "./lib/ranges/range.ts";
export {
  byterangesContentType,
  calculateMultipleRangesBodyLength,
  type OpenRange,
  type RangeSource,
  writeMultipleRanges,
  type WriteMultipleRangesOptions,
} from "./lib/ranges/byteranges.ts";
export { serveRanges, type ServeRangesOptions } from "./lib/ranges/serve.ts";
export { MEDIA_TYPES, serveFile, type ServeFileOptions } from "./lib/ranges/file.ts";

// Multipart bodies
export {
  isValidBoundary,
  multipartBoundary,
  type MultipartBoundaryOptions,
  type MultipartEpilogue,
  type MultipartEvent,
  type MultipartHead,
  type MultipartLimits,
  MultipartParser,
  type MultipartParserOptions,
  type MultipartPart,
  type MultipartPreamble,
  type MultipartSink,
  parseMultipart,
  type ParseMultipartOptions,
} from "./lib/multipart/parser.ts";
export { readFormData, type ReadFormDataOptions } from "./lib/multipart/form_data.ts";
export { savePart, type SavePartOptions } from "./lib/multipart/file.ts";

// Application, plugins and routing
export {
  Application,
  type ApplicationOptions,
  type Plugin,
  PluginError,
  type ServeInfo,
} from "./lib/app/application.ts";
export {
  type RouteContext,
  type RouteHandler,
  type Routing,
  type WebSocketHandler,
  type WebSocketRouteContext,
  type WebSocketRouteOptions,
  type WebSocketRouteOptionsWithData,
} from "./lib/app/routing.ts";
export { WebSockets, type WebSocketsConfig, type WebSocketsOptions } from "./lib/app/websockets.ts";
export {
  type EngineEnvironment,
  type EngineFactory,
  type EngineHandler,
  NativeEngine,
  type NativeEngineConfig,
  type RunningEngine,
  WireEngine,
  type WireEngineConfig,
} from "./lib/app/engines.ts";
export {
  type ApplicationModule,
  type EmbeddedServer,
  embeddedServer,
  type EmbeddedServerOptions,
} from "./lib/app/embedded.ts";
