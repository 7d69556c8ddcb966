-- MCP connectors: what each operation's upstream tool looked like when it was first loaded (or
-- last accepted by an admin). A tool whose input schema or description no longer matches its pin
-- suspends the operation until an admin accepts the change; the change seen is kept beside it.

-- CreateTable
CREATE TABLE "connector_pins" (
    "connector" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "tool" TEXT NOT NULL,
    "schema_sha256" TEXT NOT NULL,
    "description_sha256" TEXT NOT NULL,
    "input_schema" JSONB NOT NULL,
    "description" TEXT NOT NULL,
    "pinned_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "pinned_by" TEXT NOT NULL,
    "changed" JSONB,

    CONSTRAINT "connector_pins_pkey" PRIMARY KEY ("connector","action")
);
