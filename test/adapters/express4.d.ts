// express@4 under the "express4" alias: its API is the part of @types/express the tests use.
declare module "express4" {
  import type express from "express";

  const express4: typeof express;
  export default express4;
}
