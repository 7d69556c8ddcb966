-- The governed decision corpus (DESIGN.md "Knowledge"): collections, documents and their versions,
-- passages with a full-text index, and people's explicit grants to read more.

-- A collection, and who owns it: its owner (an executive) may add documents to it; admins may add
-- to any. Created by the first document added to it.
CREATE TABLE "knowledge_collections" (
    "id" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "knowledge_collections_pkey" PRIMARY KEY ("id")
);

-- A document: one title in one collection; every ingest of that title again is a new version.
CREATE TABLE "knowledge_documents" (
    "id" TEXT NOT NULL,
    "collection" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "latest_version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" TIMESTAMPTZ(3),
    "deleted_by" TEXT,

    CONSTRAINT "knowledge_documents_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "knowledge_versions" (
    "document" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "class" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "media_type" TEXT NOT NULL,
    "bytes" INTEGER NOT NULL,
    "pages" INTEGER NOT NULL,
    "content_sha256" CHAR(64) NOT NULL,
    "chunks" INTEGER NOT NULL,
    "retain_until" TIMESTAMPTZ(3),
    "ingested_by" TEXT NOT NULL,
    "ingested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "purged_at" TIMESTAMPTZ(3),

    CONSTRAINT "knowledge_versions_pkey" PRIMARY KEY ("document", "version")
);

-- A passage: `<document>:<version>:<chunk>`. Collection, class and retention are copied from its
-- version so that search filters one table. Purging blanks `text` (the tsvector follows) and keeps
-- `text_sha256`, so a citation of it still verifies, as purged.
CREATE TABLE "knowledge_passages" (
    "id" TEXT NOT NULL,
    "document" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "chunk" INTEGER NOT NULL,
    "collection" TEXT NOT NULL,
    "class" TEXT NOT NULL,
    "heading_path" TEXT[],
    "page" INTEGER,
    "text" TEXT NOT NULL,
    "text_sha256" CHAR(64) NOT NULL,
    "latest" BOOLEAN NOT NULL DEFAULT true,
    "retain_until" TIMESTAMPTZ(3),
    "purged_at" TIMESTAMPTZ(3),
    "tsv" tsvector GENERATED ALWAYS AS (to_tsvector('english', "text")) STORED,

    CONSTRAINT "knowledge_passages_pkey" PRIMARY KEY ("id")
);

-- An explicit grant to a person: read `classes` in `collection` (null: every collection).
CREATE TABLE "knowledge_grants" (
    "id" TEXT NOT NULL,
    "principal" TEXT NOT NULL,
    "collection" TEXT,
    "classes" TEXT[],
    "granted_by" TEXT NOT NULL,
    "granted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "knowledge_grants_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "knowledge_documents_collection_title_key" ON "knowledge_documents"("collection", "title");

-- CreateIndex
CREATE INDEX "knowledge_passages_document_version_idx" ON "knowledge_passages"("document", "version");

-- CreateIndex
CREATE INDEX "knowledge_passages_retain_until_idx" ON "knowledge_passages"("retain_until");

-- CreateIndex
CREATE INDEX "knowledge_passages_tsv_idx" ON "knowledge_passages" USING GIN ("tsv");

-- CreateIndex
CREATE INDEX "knowledge_grants_principal_idx" ON "knowledge_grants"("principal");

-- AddForeignKey
ALTER TABLE "knowledge_documents" ADD CONSTRAINT "knowledge_documents_collection_fkey" FOREIGN KEY ("collection") REFERENCES "knowledge_collections"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "knowledge_versions" ADD CONSTRAINT "knowledge_versions_document_fkey" FOREIGN KEY ("document") REFERENCES "knowledge_documents"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "knowledge_passages" ADD CONSTRAINT "knowledge_passages_document_version_fkey" FOREIGN KEY ("document", "version") REFERENCES "knowledge_versions"("document", "version") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Below: rules the Prisma schema cannot express. Closed unions are enforced by the database too.
ALTER TABLE "knowledge_versions" ADD CONSTRAINT "knowledge_versions_class" CHECK ("class" IN ('public', 'internal', 'confidential', 'restricted'));
ALTER TABLE "knowledge_passages" ADD CONSTRAINT "knowledge_passages_class" CHECK ("class" IN ('public', 'internal', 'confidential', 'restricted'));
-- A purged passage keeps no text.
ALTER TABLE "knowledge_passages" ADD CONSTRAINT "knowledge_passages_purged" CHECK ("purged_at" IS NULL OR "text" = '');
