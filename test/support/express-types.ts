import { createRequire } from 'node:module';

/*
 * Loose types of the Express pieces the Express front specs drive directly (the tests use plain
 * Express alongside Nest's adapter), and Express itself, loaded as the application loads it.
 */

/** An Express middleware or route handler. */
export type Mw = (req: ExpressReq, res: ExpressRes, next: (err?: unknown) => void) => void;

/** The parts of an Express request the specs read. */
export interface ExpressReq {
  url: string;
  originalUrl?: string;
  headers: Record<string, string | undefined>;
}

/** The parts of an Express response the specs use. */
export interface ExpressRes {
  json(body: unknown): void;
  setHeader(name: string, value: string | string[]): void;
  getHeader(name: string): unknown;
  removeHeader(name: string): void;
  end(...args: unknown[]): unknown;
  headersSent: boolean;
}

/** An Express application. */
export interface ExpressApp {
  (req: unknown, res: unknown): void;
  router: { handle(...args: unknown[]): unknown; stack: { route?: unknown }[] };
  response: object;
  use(fn: Mw): void;
  use(...args: unknown[]): void;
  get(path: string, fn: Mw): void;
  route(path: string): { get(fn: Mw): unknown; post(fn: Mw): unknown };
  param(name: string, fn: Mw): void;
  disable(setting: string): void;
  set(setting: string, value: unknown): void;
}

const require = createRequire(import.meta.url);

/** Express's application factory. */
export const express = require('express') as () => ExpressApp;
