-- OidcArtifact's lookup indexes hold only the rows that have their value: most rows leave these
-- columns empty, and a write then changes only the indexes its row is in.
-- DropIndex
DROP INDEX "OidcArtifact_grantId_idx";

-- DropIndex
DROP INDEX "OidcArtifact_model_uid_idx";

-- DropIndex
DROP INDEX "OidcArtifact_model_userCode_idx";

-- DropIndex
DROP INDEX "OidcArtifact_model_accountId_clientId_idx";

-- DropIndex
DROP INDEX "OidcArtifact_clientId_idx";

-- CreateIndex
CREATE INDEX "OidcArtifact_grantId_idx" ON "OidcArtifact"("grantId") WHERE "grantId" IS NOT NULL;

-- CreateIndex
CREATE INDEX "OidcArtifact_model_uid_idx" ON "OidcArtifact"("model", "uid") WHERE "uid" IS NOT NULL;

-- CreateIndex
CREATE INDEX "OidcArtifact_model_userCode_idx" ON "OidcArtifact"("model", "userCode") WHERE "userCode" IS NOT NULL;

-- CreateIndex
CREATE INDEX "OidcArtifact_model_accountId_clientId_idx" ON "OidcArtifact"("model", "accountId", "clientId") WHERE "accountId" IS NOT NULL;

-- CreateIndex
CREATE INDEX "OidcArtifact_clientId_idx" ON "OidcArtifact"("clientId") WHERE "clientId" IS NOT NULL;
