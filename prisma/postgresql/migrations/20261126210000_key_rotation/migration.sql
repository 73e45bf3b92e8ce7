-- AlterTable
ALTER TABLE "SigningKey" ADD COLUMN     "activatesAt" TIMESTAMP(3),
ADD COLUMN     "retireAfter" TIMESTAMP(3);
