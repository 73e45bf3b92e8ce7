-- AlterTable
ALTER TABLE "SigningKey" ADD COLUMN "activatesAt" DATETIME;
ALTER TABLE "SigningKey" ADD COLUMN "retireAfter" DATETIME;
