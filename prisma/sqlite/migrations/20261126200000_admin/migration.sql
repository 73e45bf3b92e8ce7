-- Deleting a client ends everything issued to it: find its artifacts without a table scan.
CREATE INDEX "OidcArtifact_clientId_idx" ON "OidcArtifact"("clientId");
